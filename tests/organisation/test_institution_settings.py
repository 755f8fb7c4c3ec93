"""The institution admin sets the complaint phone and address patients are shown (issue 10, point 9)."""
from __future__ import annotations

import pytest

from organisation.models import Role
from tests.factories import login

from .conftest import audit_entries, body, fresh

URL = "/i/{id}/settings"


def test_the_admin_sets_the_complaint_phone_and_address_audited(admin_client, tenant_a):
    page = admin_client.get(URL.format(id=tenant_a.id))
    assert page.status_code == 200 and "投诉电话" in body(page) and "投诉接待地点" in body(page)
    assert f'href="/i/{tenant_a.id}/settings"' in body(page)  # in the navigation

    saved = admin_client.post(URL.format(id=tenant_a.id), data={
        "complaint_phone": "（028）8888-6666 转 8001", "complaint_address": "  门诊楼一层   患者服务中心 "})

    assert saved.status_code == 302
    institution = fresh(tenant_a.institution)
    assert institution.complaint_phone == "(028)8888-6666 转 8001"
    assert institution.complaint_address == "门诊楼一层 患者服务中心"
    assert institution.complaint_phone_dial == "02888886666"
    entry = audit_entries(action="institution.update_complaint_contact", target_id=str(tenant_a.id))[-1]
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id
    assert entry.data["complaint_phone"][1] == "(028)8888-6666 转 8001"


@pytest.mark.parametrize("phone", ["请打总机", "12", "028-8888-6666; DROP", "1" * 41])
def test_a_phone_that_cannot_be_dialled_is_a_400_in_chinese(admin_client, tenant_a, phone):
    before = fresh(tenant_a.institution).complaint_phone
    response = admin_client.post(URL.format(id=tenant_a.id), data={"complaint_phone": phone, "complaint_address": ""})
    assert response.status_code == 400
    assert "电话" in body(response)
    assert fresh(tenant_a.institution).complaint_phone == before


@pytest.mark.parametrize("role", [Role.COMPLAINT_OFFICER, Role.DEPARTMENT_HANDLER, Role.LEADERSHIP])
def test_other_roles_may_not_change_it(client, tenant_a, role):
    login(client, tenant_a.role_user(role))
    response = client.post(URL.format(id=tenant_a.id), data={"complaint_phone": "12320"})
    assert response.status_code == 403
    assert fresh(tenant_a.institution).complaint_phone != "12320"


def test_another_hospitals_admin_gets_a_404(admin_client, tenant_b):
    assert admin_client.get(URL.format(id=tenant_b.id)).status_code == 404
