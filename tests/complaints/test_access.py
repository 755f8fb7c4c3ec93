"""Who may see and act on one case: the rules of complaints/access.py, and the pages that follow them."""
from __future__ import annotations

import pytest

from complaints import access
from complaints.models import CaseDepartment
from core.extensions import db
from tests.complaints.conftest import department, staff_login
from tests.factories import demo_user


@pytest.fixture
def routed(rmyy, make_case):
    """Two cases: one led by 财务科 (the demo handler's department), one by 消化内科 (not his)."""
    mine, other = make_case(), make_case()
    mine.lead_department_id = department(rmyy, "CWK").id
    other.lead_department_id = department(rmyy, "XHNK").id
    db.session.flush()
    return mine, other


def test_officers_work_every_case_of_their_hospital_and_no_other(routed):
    mine, other = routed
    for username in ("rmyy-officer", "rmyy-admin"):
        user = demo_user(username)
        assert access.is_officer(user, mine) and access.may_work_case(user, other) and access.may_draft(user, other)
    stranger = demo_user("zyy-officer")
    assert not access.is_officer(stranger, mine) and not access.may_see_case(stranger, mine)


def test_handlers_work_what_their_departments_lead_or_co_handle_and_draft_only_as_lead(rmyy, routed):
    mine, other = routed
    handler = demo_user("rmyy-handler")
    assert access.may_work_case(handler, mine) and access.leads(handler, mine) and access.may_draft(handler, mine)
    assert not access.may_see_case(handler, other) and not access.is_officer(handler, mine)
    db.session.add(CaseDepartment(complaint_id=other.id, department_id=department(rmyy, "CWK").id, role="co",
                                  active=True))
    db.session.flush()
    db.session.refresh(other)
    assert access.may_work_case(handler, other) and not access.may_draft(handler, other)


def test_leadership_reads_the_case_page_and_cannot_open_an_action_page(client, rmyy, routed):
    mine, _other = routed
    leader = demo_user("rmyy-leader")
    assert access.may_see_case(leader, mine) and not access.may_work_case(leader, mine)
    staff_login(client, "rmyy-leader")
    assert client.get(f"/i/{rmyy.id}/complaints/{mine.id}").status_code == 200
    assert client.get(f"/i/{rmyy.id}/complaints/{mine.id}/replies/new").status_code == 403


@pytest.mark.parametrize("username, status", [("rmyy-handler", 404), ("zyy-officer", 404), ("region", 403),
                                              ("rmyy-officer", 200), ("rmyy-leader", 200)])
def test_the_case_page_answers_by_the_same_rules(client, rmyy, routed, username, status):
    _mine, other = routed
    staff_login(client, username)
    assert client.get(f"/i/{rmyy.id}/complaints/{other.id}").status_code == status
