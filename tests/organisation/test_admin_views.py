"""The organisation admin pages: create, edit, deactivate (never delete), audit, and the audit viewer."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry, record
from core.extensions import db
from organisation.models import Department, Institution, Region, Role, StaffUser, Touchpoint
from organisation.passwords import verify_password
from tests.factories import login, make_department, make_region, make_staff, make_touchpoint, unique

from .conftest import audit_entries, body, fresh, initial_password, table_body

BEIJING = ZoneInfo("Asia/Shanghai")


def only_entry(action: str, target) -> AuditEntry:
    entries = audit_entries(action=action, target_id=str(target.id))
    assert len(entries) == 1, f"expected one {action} entry, found {len(entries)}"
    return entries[0]


def department_by_code(institution_id: int, code: str) -> Department | None:
    return db.session.scalar(select(Department).where(Department.institution_id == institution_id,
                                                      Department.code == code))


def test_no_organisation_route_deletes_anything(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("org."):
            assert "DELETE" not in rule.methods and "delete" not in rule.endpoint, rule.rule


@pytest.mark.parametrize("path", ["departments/{d}/toggle", "touchpoints/{t}/toggle", "staff/{s}/toggle",
                                  "staff/{s}/reset-password", "staff/{s}/unlock", "toggle"])
def test_state_changing_actions_refuse_get(admin_client, tenant_a, path):
    url = f"/i/{tenant_a.id}/" + path.format(d=tenant_a.department.id, t=tenant_a.touchpoint.id, s=tenant_a.staff.id)
    assert admin_client.get(url).status_code == 405


# Departments -----------------------------------------------------------

def test_admin_creates_a_department_and_the_audit_names_actor_and_institution(admin_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/departments/new", data={
        "code": "SJNK", "name": "神经内科", "kind": "clinical", "parent_id": tenant_a.department.parent_id})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/i/{tenant_a.id}/departments"
    department = department_by_code(tenant_a.id, "SJNK")
    assert department.name == "神经内科" and department.parent_id == tenant_a.department.parent_id
    entry = only_entry("department.create", department)
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id
    assert entry.institution_id == tenant_a.id
    assert entry.data["code"] == "SJNK"


def test_duplicate_department_code_is_refused_with_a_chinese_message(admin_client, tenant_a):
    before = db.session.scalar(select(func.count()).select_from(Department))
    response = admin_client.post(f"/i/{tenant_a.id}/departments/new",
                                 data={"code": tenant_a.department.code, "name": "重复", "kind": "clinical"})
    assert response.status_code == 400
    assert f"编码 {tenant_a.department.code} 在本机构已被使用。" in body(response)
    assert db.session.scalar(select(func.count()).select_from(Department)) == before


def test_a_code_used_by_another_institution_is_free_here(admin_client, tenant_a, tenant_b):
    response = admin_client.post(f"/i/{tenant_a.id}/departments/new",
                                 data={"code": tenant_b.department.code, "name": "同码科室", "kind": "clinical"})
    assert response.status_code == 302
    assert department_by_code(tenant_a.id, tenant_b.department.code) is not None


def test_editing_a_department_to_another_departments_code_is_refused(admin_client, tenant_a):
    other = make_department(tenant_a.institution)
    response = admin_client.post(f"/i/{tenant_a.id}/departments/{other.id}/edit",
                                 data={"code": tenant_a.department.code, "name": other.name, "kind": "clinical"})
    assert response.status_code == 400
    assert f"编码 {tenant_a.department.code} 在本机构已被使用。" in body(response)
    assert fresh(other).code != tenant_a.department.code


def test_department_edit_records_what_changed(admin_client, tenant_a):
    department = make_department(tenant_a.institution, name="旧名称")
    response = admin_client.post(f"/i/{tenant_a.id}/departments/{department.id}/edit",
                                 data={"code": department.code, "name": "新名称", "kind": "medical_tech"})
    assert response.status_code == 302
    assert fresh(department).name == "新名称"
    entry = only_entry("department.update", department)
    assert entry.data["name"] == ["旧名称", "新名称"]
    assert entry.data["kind"] == ["clinical", "medical_tech"]
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id
    assert entry.institution_id == tenant_a.id


@pytest.mark.parametrize("depth", [1, 2])
def test_department_cannot_become_a_child_of_its_own_descendant(admin_client, tenant_a, depth):
    top = make_department(tenant_a.institution)
    node = top
    for _level in range(depth):
        node = make_department(tenant_a.institution, parent=node)
    response = admin_client.post(f"/i/{tenant_a.id}/departments/{top.id}/edit", data={
        "code": top.code, "name": top.name, "kind": "clinical", "parent_id": node.id})
    assert response.status_code == 400
    assert "上级科室不能是该科室本身或其下级。" in body(response)
    assert fresh(top).parent_id is None


def test_department_cannot_be_its_own_parent(admin_client, tenant_a):
    department = make_department(tenant_a.institution)
    response = admin_client.post(f"/i/{tenant_a.id}/departments/{department.id}/edit", data={
        "code": department.code, "name": department.name, "kind": "clinical", "parent_id": department.id})
    assert response.status_code == 400
    assert fresh(department).parent_id is None


def test_department_is_deactivated_and_reactivated_never_deleted(admin_client, tenant_a):
    department = make_department(tenant_a.institution, name=unique("待停用科室"))
    url = f"/i/{tenant_a.id}/departments/{department.id}/toggle"
    assert admin_client.post(url).status_code == 302
    assert fresh(department).active is False
    listing = table_body(admin_client.get(f"/i/{tenant_a.id}/departments?q={department.name}"))
    assert department.name in listing and "已停用" in listing
    only_entry("department.deactivate", department)
    assert admin_client.post(url).status_code == 302
    assert fresh(department).active is True
    entry = only_entry("department.activate", department)
    assert entry.institution_id == tenant_a.id


# Touchpoints -----------------------------------------------------------

def test_admin_creates_a_touchpoint_in_a_department(admin_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/touchpoints/new", data={
        "code": "W-NEW-01", "name": "新窗口", "kind": "window", "department_id": tenant_a.department.id,
        "location": "门诊楼二层"})
    assert response.status_code == 302
    touchpoint = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == tenant_a.id,
                                                            Touchpoint.code == "W-NEW-01"))
    assert touchpoint.department_id == tenant_a.department.id and touchpoint.location == "门诊楼二层"
    entry = only_entry("touchpoint.create", touchpoint)
    assert entry.institution_id == tenant_a.id
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id


def test_duplicate_touchpoint_code_is_refused_with_a_chinese_message(admin_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/touchpoints/new", data={
        "code": tenant_a.touchpoint.code, "name": "重复窗口", "kind": "window",
        "department_id": tenant_a.department.id})
    assert response.status_code == 400
    assert f"编码 {tenant_a.touchpoint.code} 在本机构已被使用。" in body(response)


def test_touchpoint_edit_moves_it_to_another_department_and_is_audited(admin_client, tenant_a):
    touchpoint = make_touchpoint(tenant_a.institution)
    old_department = touchpoint.department_id
    response = admin_client.post(f"/i/{tenant_a.id}/touchpoints/{touchpoint.id}/edit", data={
        "code": touchpoint.code, "name": touchpoint.name, "kind": "clinic", "department_id": tenant_a.department.id})
    assert response.status_code == 302
    assert fresh(touchpoint).department_id == tenant_a.department.id
    entry = only_entry("touchpoint.update", touchpoint)
    assert entry.data["department_id"] == [old_department, tenant_a.department.id]
    assert entry.data["kind"] == ["window", "clinic"]


def test_touchpoint_is_deactivated_not_deleted(admin_client, tenant_a):
    touchpoint = make_touchpoint(tenant_a.institution)
    assert admin_client.post(f"/i/{tenant_a.id}/touchpoints/{touchpoint.id}/toggle").status_code == 302
    assert fresh(touchpoint).active is False
    assert only_entry("touchpoint.deactivate", touchpoint).institution_id == tenant_a.id


# Staff -----------------------------------------------------------------

def test_new_staff_sees_the_initial_password_once_and_must_change_it(admin_client, new_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data={
        "username": "new.officer", "display_name": "新投诉专员", "roles": ["complaint_officer"]})
    assert response.status_code == 200
    password = initial_password(response)
    assert "new.officer" in body(response)
    assert password not in body(admin_client.get(f"/i/{tenant_a.id}/staff"))  # shown once only

    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "new.officer"))
    assert user.institution_id == tenant_a.id and user.roles == {Role.COMPLAINT_OFFICER}
    assert user.must_change_password
    assert password not in user.password_hash and verify_password(user.password_hash, password)
    entry = only_entry("staff.create", user)
    assert entry.data["roles"] == ["complaint_officer"]
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id and entry.institution_id == tenant_a.id
    assert password not in str(entry.data)

    user_client = new_client()
    assert user_client.post("/login", data={"username": "new.officer", "password": password}).status_code == 302
    assert user_client.get(f"/i/{tenant_a.id}/").headers["Location"] == "/account/password"


@pytest.mark.parametrize("taken_by", ["tenant_a", "tenant_b"])
def test_duplicate_username_is_refused_even_across_institutions(admin_client, tenant_a, tenant_b, taken_by):
    existing = {"tenant_a": tenant_a, "tenant_b": tenant_b}[taken_by].staff
    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data={
        "username": existing.username, "display_name": "重名", "roles": ["leadership"]})
    assert response.status_code == 400
    assert f"用户名 {existing.username} 已存在。" in body(response)
    assert fresh(existing).display_name != "重名"


def test_malformed_username_is_refused(admin_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data={
        "username": "张三", "display_name": "张三", "roles": ["leadership"]})
    assert response.status_code == 400
    assert "用户名为 3–64 位小写字母、数字、下划线、点或短横线。" in body(response)


def test_department_handler_requires_a_department(admin_client, tenant_a):
    data = {"username": "handler.x", "display_name": "处理人", "roles": ["department_handler"]}
    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data=data)
    assert response.status_code == 400
    assert "科室处理人至少需要绑定一个科室。" in body(response)
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "handler.x")) is None

    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data={**data, "departments": [tenant_a.department.id]})
    assert response.status_code == 200  # the page with the initial password
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "handler.x"))
    assert user.department_ids == {tenant_a.department.id}


def test_removing_the_last_department_of_a_handler_is_refused(admin_client, tenant_a):
    handler = make_staff([Role.DEPARTMENT_HANDLER], tenant_a.institution)
    response = admin_client.post(f"/i/{tenant_a.id}/staff/{handler.id}/edit", data={
        "display_name": handler.display_name, "roles": ["department_handler"]})
    assert response.status_code == 400
    assert "科室处理人至少需要绑定一个科室。" in body(response)
    assert fresh(handler).departments


def test_staff_role_change_is_audited_and_ends_the_old_session(admin_client, new_client, tenant_a):
    user = tenant_a.staff
    user_client = new_client()
    login(user_client, user)
    assert user_client.get(f"/i/{tenant_a.id}/").status_code == 200
    response = admin_client.post(f"/i/{tenant_a.id}/staff/{user.id}/edit", data={
        "display_name": "改名后", "roles": ["followup_nurse", "leadership"]})
    assert response.status_code == 302
    user = fresh(user)
    assert user.roles == {Role.FOLLOWUP_NURSE, Role.LEADERSHIP} and user.display_name == "改名后"
    entry = only_entry("staff.update", user)
    assert entry.data["roles"] == [["followup_nurse"], ["followup_nurse", "leadership"]]
    assert entry.institution_id == tenant_a.id
    assert user_client.get(f"/i/{tenant_a.id}/").status_code == 302


def test_staff_is_deactivated_not_deleted(admin_client, tenant_a):
    user = tenant_a.staff
    assert admin_client.post(f"/i/{tenant_a.id}/staff/{user.id}/toggle").status_code == 302
    assert fresh(user).active is False
    entry = only_entry("staff_user.deactivate", user)
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id and entry.institution_id == tenant_a.id


def test_admin_cannot_deactivate_their_own_account(admin_client, tenant_a):
    admin = tenant_a.role_user(Role.INSTITUTION_ADMIN)
    response = admin_client.post(f"/i/{tenant_a.id}/staff/{admin.id}/toggle", follow_redirects=True)
    assert "不能停用自己的账号。" in body(response)
    assert fresh(admin).active is True
    assert not audit_entries(action="staff_user.deactivate", target_id=str(admin.id))


# Institutions ----------------------------------------------------------

def institution_data(region_id: int, **overrides) -> dict:
    data = {"name": "示范妇幼保健院", "short_name": "示范妇幼", "registration_code": "NEW-001",
            "level": "secondary", "grade": "a", "category": "maternal_child", "region_id": region_id}
    data.update(overrides)
    return data


def test_platform_admin_registers_an_institution(client, platform_admin, tenant_a):
    login(client, platform_admin)
    response = client.post("/admin/institutions/new", data=institution_data(tenant_a.institution.region_id))
    assert response.status_code == 302
    institution = db.session.scalar(select(Institution).where(Institution.registration_code == "NEW-001"))
    assert response.headers["Location"] == f"/i/{institution.id}/"
    assert institution.peer_class == ("secondary", "maternal_child")
    entry = only_entry("institution.create", institution)
    assert entry.actor_id == platform_admin.id and entry.institution_id == institution.id


def test_regional_admin_registers_an_institution_in_their_region(client, city_admin, tenant_a):
    login(client, city_admin)
    response = client.post("/admin/institutions/new", data=institution_data(tenant_a.institution.region_id))
    assert response.status_code == 302
    institution = db.session.scalar(select(Institution).where(Institution.registration_code == "NEW-001"))
    assert only_entry("institution.create", institution).actor_id == city_admin.id


def test_duplicate_registration_code_is_refused_with_a_chinese_message(client, platform_admin, tenant_a):
    login(client, platform_admin)
    code = tenant_a.institution.registration_code
    response = client.post("/admin/institutions/new",
                           data=institution_data(tenant_a.institution.region_id, registration_code=code))
    assert response.status_code == 400
    assert f"登记号 {code} 已被其他机构使用。" in body(response)
    assert db.session.scalar(select(func.count()).select_from(Institution)
                             .where(Institution.registration_code == code)) == 1


def test_institution_edit_is_audited(client, city_admin, tenant_b):
    login(client, city_admin)
    institution = tenant_b.institution
    response = client.post(f"/i/{institution.id}/edit", data=institution_data(
        institution.region_id, name=institution.name, registration_code=institution.registration_code,
        level="tertiary", grade="a", category="tcm", short_name="新简称"))
    assert response.status_code == 302
    assert fresh(institution).level == "tertiary"
    entry = only_entry("institution.update", institution)
    assert entry.data["level"] == ["secondary", "tertiary"] and entry.data["short_name"] == ["示范中医院", "新简称"]
    assert entry.institution_id == institution.id and entry.actor_id == city_admin.id


def test_institution_is_deactivated_not_deleted(client, platform_admin, tenant_b):
    login(client, platform_admin)
    assert client.post(f"/i/{tenant_b.id}/toggle").status_code == 302
    assert fresh(tenant_b.institution).active is False
    assert only_entry("institution.deactivate", tenant_b.institution).institution_id == tenant_b.id
    assert tenant_b.institution.name in table_body(client.get(f"/admin/institutions?q={tenant_b.institution.name}"))


# Regions and platform staff -------------------------------------------

def test_platform_admin_creates_a_region_under_a_parent(client, platform_admin, tenant_a):
    login(client, platform_admin)
    city = tenant_a.institution.region.parent
    response = client.post("/admin/regions/new", data={"code": "519977", "name": "新设区", "level": "county",
                                                        "parent_id": city.id})
    assert response.status_code == 302
    region = db.session.scalar(select(Region).where(Region.code == "519977"))
    assert region.parent_id == city.id and region.path == f"{city.path}{region.id}/"
    entry = only_entry("region.create", region)
    assert entry.actor_id == platform_admin.id and entry.institution_id is None


def test_duplicate_region_code_is_refused_with_a_chinese_message(client, platform_admin, tenant_a):
    login(client, platform_admin)
    taken = tenant_a.institution.region.code
    response = client.post("/admin/regions/new", data={"code": taken, "name": "重复区", "level": "county"})
    assert response.status_code == 400
    assert f"区划代码 {taken} 已被其他区域使用。" in body(response)
    other = make_region()
    response = client.post(f"/admin/regions/{other.id}/edit", data={"code": taken, "name": other.name,
                                                                      "level": "province"})
    assert response.status_code == 400
    assert f"区划代码 {taken} 已被其他区域使用。" in body(response)
    assert fresh(other).code != taken


def test_region_edit_and_deactivation_are_audited(client, platform_admin):
    login(client, platform_admin)
    region = make_region(name="旧区名")
    assert client.post(f"/admin/regions/{region.id}/edit",
                       data={"code": region.code, "name": "新区名", "level": "province"}).status_code == 302
    assert only_entry("region.update", region).data == {"name": ["旧区名", "新区名"]}
    assert client.post(f"/admin/regions/{region.id}/toggle").status_code == 302
    assert fresh(region).active is False
    assert only_entry("region.deactivate", region).actor_id == platform_admin.id


def test_regional_admin_account_requires_a_region(client, platform_admin, tenant_a):
    login(client, platform_admin)
    data = {"username": "new.region", "display_name": "区卫健局", "roles": ["regional_admin"]}
    response = client.post("/admin/staff/new", data=data)
    assert response.status_code == 400
    assert "区域管理员必须指定所辖区域。" in body(response)
    response = client.post("/admin/staff/new", data={**data, "region_id": tenant_a.institution.region_id})
    assert response.status_code == 200
    assert "new.region" in body(response) and initial_password(response)
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == "new.region"))
    assert user.region_id == tenant_a.institution.region_id and user.must_change_password
    assert only_entry("staff.create", user).actor_id == platform_admin.id


# Lists -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/i/{a}/departments", "/i/{a}/touchpoints", "/i/{a}/staff", "/i/{a}/audit",
                                  "/admin/institutions", "/admin/audit"])
@pytest.mark.parametrize("page", ["2", "0", "-3", "abc", "99999999999999999999"])
def test_list_pages_accept_any_page_number(client, platform_admin, tenant_a, path, page):
    login(client, platform_admin)
    response = client.get(path.format(a=tenant_a.id) + f"?page={page}")
    assert response.status_code == 200


@pytest.mark.parametrize("kind", ["departments", "audit"])
def test_long_lists_render_their_pager(admin_client, tenant_a, kind):
    for _n in range(55):
        make_department(tenant_a.institution)  # also writes 55 audit entries
    response = admin_client.get(f"/i/{tenant_a.id}/{kind}")
    assert response.status_code == 200
    assert "下一页" in body(response)
    second = admin_client.get(f"/i/{tenant_a.id}/{kind}?page=2")
    assert second.status_code == 200 and "上一页" in body(second)


# Audit viewer ----------------------------------------------------------

def beijing(*args) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


@pytest.fixture
def audit_sample(ctx, tenant_a, tenant_b):
    """Three entries in A at known Beijing times, and a look-alike in B."""
    samples = [
        ("alice-auditor", "sample.alpha", ("widget", 1), beijing(2020, 3, 1, 10, 0), tenant_a),
        ("bob-auditor", "sample.beta", ("widget", 2), beijing(2020, 3, 2, 23, 30), tenant_a),
        ("carol-auditor", "sample.alpha.sub", ("gadget", 3), beijing(2020, 3, 3, 0, 30), tenant_a),
        ("mallory-auditor", "sample.alpha", ("widget", 4), beijing(2020, 3, 2, 12, 0), tenant_b),
    ]
    for actor, action, target, when, tenant in samples:
        entry = record(actor, action, target)
        entry.created_at = when
        entry.institution_id = tenant.id
    db.session.flush()


def shown_actors(response) -> set[str]:
    return set(re.findall(r"(\w+)-auditor", table_body(response)))


@pytest.mark.parametrize(("query", "expected"), [
    ("actor=auditor", {"alice", "bob", "carol"}),
    ("actor=alice", {"alice"}),
    ("actor=ALICE", {"alice"}),
    ("action=sample.alpha", {"alice", "carol"}),
    ("action=sample.beta", {"bob"}),
    ("target_type=widget&actor=auditor", {"alice", "bob"}),
    ("target_type=widget&target_id=2", {"bob"}),
    ("date_from=2020-03-02&actor=auditor", {"bob", "carol"}),
    ("date_to=2020-03-01&actor=auditor", {"alice"}),
    # 23:30 and 00:30 Beijing are both 2 March in UTC; only the first is on 2 March in Beijing.
    ("date_from=2020-03-02&date_to=2020-03-02&actor=auditor", {"bob"}),
    ("date_from=2020-03-04&actor=auditor", set()),
])
def test_audit_viewer_filters_entries(admin_client, tenant_a, audit_sample, query, expected):
    response = admin_client.get(f"/i/{tenant_a.id}/audit?{query}")
    assert response.status_code == 200
    assert shown_actors(response) == expected


def test_institution_admin_never_sees_another_institutions_entries(admin_client, tenant_a, audit_sample):
    response = admin_client.get(f"/i/{tenant_a.id}/audit?actor=mallory")
    assert shown_actors(response) == set()
    assert admin_client.get("/admin/audit?actor=mallory").status_code == 403


def test_regional_audit_viewer_spans_the_institutions_of_the_region(client, city_admin, audit_sample):
    login(client, city_admin)
    response = client.get("/admin/audit?action=sample.alpha")
    assert shown_actors(response) == {"alice", "carol", "mallory"}


@pytest.mark.parametrize(("query", "message"), [
    ("date_from=2020-02-30", "日期格式为 YYYY-MM-DD。"),
    ("date_to=yesterday", "日期格式为 YYYY-MM-DD。"),
    ("date_from=0001-01-01", "日期须在 1900 年至 2999 年之间。"),
    ("date_to=9999-12-31", "日期须在 1900 年至 2999 年之间。"),
])
def test_audit_viewer_rejects_bad_dates_with_400(admin_client, tenant_a, query, message):
    response = admin_client.get(f"/i/{tenant_a.id}/audit?{query}")
    assert response.status_code == 400
    assert message in body(response)
