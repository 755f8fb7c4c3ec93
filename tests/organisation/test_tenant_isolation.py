"""Tenant isolation, proven on every staff URL the organisation blueprint serves.

The routes are read from ``app.url_map``, not listed here, so a new route under
``/i/<institution_id>/`` is checked the day it is added. Routes without an
institution argument are few and each is classified explicitly below; a new one
fails ``test_every_route_without_an_institution_is_classified`` until it is.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import url_for
from sqlalchemy import func, select

from core.audit import AuditEntry, record
from core.db import utcnow
from core.extensions import db
from organisation.models import (
    Department,
    Institution,
    Notification,
    Region,
    Role,
    StaffRole,
    StaffUser,
    Touchpoint,
    staff_department,
)
from tests.factories import (
    demo_institution,
    login,
    make_department,
    make_institution,
    make_region,
    make_staff,
    make_touchpoint,
    unique,
)

from .conftest import Tenant, body, table_body

# URL arguments other than institution_id, and which object of the target tenant they name.
OBJECT_ARGS = {"department_id": "department", "touchpoint_id": "touchpoint", "staff_id": "staff"}
FIXED_ARGS = {"kind": "departments", "channel": "wecom"}

ALL = set(Role)
VIEW = {Role.INSTITUTION_ADMIN, Role.COMPLAINT_OFFICER, Role.LEADERSHIP, Role.REGIONAL_ADMIN, Role.PLATFORM_ADMIN}
MANAGE = {Role.INSTITUTION_ADMIN, Role.PLATFORM_ADMIN}
INSTITUTION_RECORD = {Role.REGIONAL_ADMIN, Role.PLATFORM_ADMIN}
AUDIT = {Role.INSTITUTION_ADMIN, Role.REGIONAL_ADMIN, Role.PLATFORM_ADMIN}
PLATFORM = {Role.PLATFORM_ADMIN}

# Who may use each institution page of an institution they can see. Other users get 403.
INSTITUTION_ACCESS = {
    "org.institution_overview": ALL,
    "org.institution_edit": INSTITUTION_RECORD,
    "org.institution_toggle": INSTITUTION_RECORD,
    "org.departments": VIEW,
    "org.department_new": MANAGE,
    "org.department_edit": MANAGE,
    "org.department_toggle": MANAGE,
    "org.touchpoints": VIEW,
    "org.touchpoint_new": MANAGE,
    "org.touchpoint_edit": MANAGE,
    "org.touchpoint_toggle": MANAGE,
    "org.staff": VIEW,
    "org.staff_new": MANAGE,
    "org.staff_edit": MANAGE,
    "org.staff_toggle": MANAGE,
    "org.staff_reset_password": MANAGE,
    "org.staff_unlock": MANAGE,
    "org.staff_reset_two_factor": MANAGE,
    "org.import_rows": MANAGE,
    "org.import_template": MANAGE,
    "org.institution_settings": MANAGE,
    "org.audit": AUDIT,
    "org.notifier_settings": MANAGE,
    "org.notifier_test": MANAGE,
}

# The allow-list: routes with no institution in the URL, who may use them, and the success status of a GET.
NON_INSTITUTION_ACCESS = {
    "org.home": (ALL, 302),
    "org.regions": (PLATFORM, 200),
    "org.region_new": (PLATFORM, 200),
    "org.region_edit": (PLATFORM, 200),
    "org.region_toggle": (PLATFORM, None),
    "org.institutions": (VIEW, 200),
    "org.institution_new": (INSTITUTION_RECORD, 200),
    "org.platform_staff": (PLATFORM, 200),
    "org.platform_staff_new": (PLATFORM, 200),
    "org.platform_staff_edit": (PLATFORM, 200),
    "org.platform_staff_toggle": (PLATFORM, None),
    "org.platform_staff_reset_two_factor": (PLATFORM, None),
    "org.audit_all": (INSTITUTION_RECORD, 200),
    "auth.change_password": (ALL, 200),
    # Each user's own notifications (another user's are 404: tests/organisation/test_notifications.py).
    "org.notifications_list": (ALL, 200),
    "org.notification_open": (ALL, None),
    "org.notification_read": (ALL, None),
    "org.notifications_read_all": (ALL, None),
}

# Routes the enumeration must find; guards against a matrix that silently checks nothing.
KNOWN_INSTITUTION_ENDPOINTS = {"org.department_edit", "org.touchpoint_toggle", "org.staff_reset_password",
                               "org.import_rows", "org.audit", "org.institution_overview"}


def staff_rules(app, *, with_institution: bool) -> list:
    rules = [r for r in app.url_map.iter_rules()
             if r.endpoint.startswith("org.") or r.endpoint == "auth.change_password"]
    return sorted((r for r in rules if ("institution_id" in r.arguments) == with_institution),
                  key=lambda r: r.rule)


def methods(rule) -> list[str]:
    return sorted(rule.methods & {"GET", "POST"})


def build_url(rule, institution_id: int, objects: Tenant) -> str:
    args = {}
    for name in rule.arguments:
        if name == "institution_id":
            args[name] = institution_id
        elif name in OBJECT_ARGS:
            args[name] = getattr(objects, OBJECT_ARGS[name]).id
        elif name in FIXED_ARGS:
            args[name] = FIXED_ARGS[name]
        else:
            pytest.fail(f"{rule.endpoint} takes <{name}>: tell this test which object of the other "
                        f"institution to put there (OBJECT_ARGS) so that its isolation is checked")
    return url_for(rule.endpoint, **args)


def csv_upload(text: str, name: str = "rows.csv"):
    return io.BytesIO(("\ufeff" + text).encode("utf-8")), name


def post_data(endpoint: str, target: Tenant | None = None) -> dict:
    """Valid-looking data, so that a missing check shows up as a success rather than a form error."""
    department_id = target.department.id if target else None
    region_id = target.institution.region_id if target else None
    payloads: dict[str, Callable[[], dict]] = {
        "org.institution_edit": lambda: {"name": "被篡改的医院", "registration_code": "LEAK-1", "level": "secondary",
                                         "grade": "a", "category": "general", "region_id": region_id},
        "org.institution_new": lambda: {"name": "越权新建医院", "registration_code": "LEAK-2", "level": "secondary",
                                        "grade": "a", "category": "general", "region_id": region_id},
        "org.department_new": lambda: {"code": "LEAK", "name": "越权科室", "kind": "clinical"},
        "org.department_edit": lambda: {"code": "LEAK", "name": "越权科室", "kind": "clinical"},
        "org.touchpoint_new": lambda: {"code": "LEAK", "name": "越权窗口", "kind": "window",
                                       "department_id": department_id},
        "org.touchpoint_edit": lambda: {"code": "LEAK", "name": "越权窗口", "kind": "window",
                                        "department_id": department_id},
        "org.staff_new": lambda: {"username": "leak-user", "display_name": "越权人员", "roles": ["complaint_officer"]},
        "org.staff_edit": lambda: {"display_name": "越权人员", "roles": ["institution_admin"]},
        "org.import_rows": lambda: {"kind": "departments",
                                    "file": csv_upload("科室编码,科室名称,科室类型\nLEAK,越权科室,临床\n")},
        "org.institution_settings": lambda: {"complaint_phone": "12320", "complaint_address": "越权地址"},
        "org.region_new": lambda: {"code": "999999", "name": "越权区域", "level": "province"},
        "org.region_edit": lambda: {"code": "999998", "name": "越权区域", "level": "province"},
        "org.platform_staff_new": lambda: {"username": "leak-admin", "display_name": "越权管理员",
                                           "roles": ["platform_admin"]},
        "org.platform_staff_edit": lambda: {"display_name": "越权管理员", "roles": ["platform_admin"]},
        "auth.change_password": lambda: {"current_password": "wrong", "new_password": "Leak-password-1",
                                         "confirm": "Leak-password-1"},
    }
    return payloads.get(endpoint, dict)()


def rows_of(institution_id: int) -> dict[str, list[tuple]]:
    """Everything institution ``institution_id`` owns, read afresh with Core queries."""
    def rows(stmt):
        return [tuple(r) for r in db.session.execute(stmt).all()]

    staff_ids = select(StaffUser.id).where(StaffUser.institution_id == institution_id)
    return {
        "institution": rows(select(Institution.__table__).where(Institution.id == institution_id)),
        "departments": rows(select(Department.__table__).where(Department.institution_id == institution_id)
                            .order_by(Department.id)),
        "touchpoints": rows(select(Touchpoint.__table__).where(Touchpoint.institution_id == institution_id)
                            .order_by(Touchpoint.id)),
        "staff": rows(select(StaffUser.__table__).where(StaffUser.institution_id == institution_id)
                      .order_by(StaffUser.id)),
        "staff_roles": rows(select(StaffRole.__table__).where(StaffRole.staff_id.in_(staff_ids))
                            .order_by(StaffRole.id)),
        "staff_departments": rows(select(staff_department).where(staff_department.c.staff_id.in_(staff_ids))
                                  .order_by(staff_department.c.staff_id, staff_department.c.department_id)),
        "audit": rows(select(AuditEntry.__table__).where(AuditEntry.institution_id == institution_id)
                      .order_by(AuditEntry.id)),
    }


def table_counts() -> dict[str, int]:
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


@pytest.fixture
def outsider_factory(tenant_a, tenant_b):
    """Users who must not see institution B: every role of A, and regional admins whose region misses B."""
    def make(kind: str) -> StaffUser:
        if kind in {r.value for r in Role.institution_roles()}:
            return tenant_a.role_user(Role(kind))
        b_region = tenant_b.institution.region
        if kind == "regional_admin_of_sibling_county":
            region = make_region(parent=b_region.parent, level="county")
            make_institution(region)  # the admin has an institution of their own to look after
        elif kind == "regional_admin_of_region_below_b":
            region = make_region(parent=b_region, level="county")
        elif kind == "regional_admin_of_other_province":
            region = make_region()
        else:  # pragma: no cover - a typo in the parametrisation
            raise AssertionError(kind)
        return make_staff([Role.REGIONAL_ADMIN], region=region)

    return make


OUTSIDERS = [r.value for r in Role.institution_roles()] + [
    "regional_admin_of_sibling_county", "regional_admin_of_region_below_b", "regional_admin_of_other_province"]


def test_matrix_enumerates_the_institution_routes(app):
    found = {r.endpoint for r in staff_rules(app, with_institution=True)}
    assert KNOWN_INSTITUTION_ENDPOINTS <= found
    assert len(found) >= 20


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_outsider_gets_404_on_every_url_of_another_institution(app, client, tenant_b, outsider_factory, outsider):
    user = outsider_factory(outsider)
    login(client, user)
    assert tenant_b.staff  # made before the snapshot
    before_b, before_counts = rows_of(tenant_b.id), table_counts()
    failures = []
    for rule in staff_rules(app, with_institution=True):
        url = build_url(rule, tenant_b.id, tenant_b)
        for method in ("GET", "POST"):
            response = client.open(url, method=method, data=post_data(rule.endpoint, tenant_b) if method == "POST"
                                   else None)
            expected = 404 if method in rule.methods else 405
            if response.status_code != expected:
                failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, expected {expected}")
            elif tenant_b.institution.name in body(response):
                failures.append(f"{method} {url}: the page names institution B")
    assert not failures, "\n".join(failures)
    assert rows_of(tenant_b.id) == before_b
    assert table_counts() == before_counts


@pytest.mark.parametrize("who", ["institution_admin", "platform_admin"])
def test_another_institutions_object_ids_under_an_own_institution_url_are_404(
        app, client, tenant_a, tenant_b, platform_admin, who):
    login(client, tenant_a.role_user(Role.INSTITUTION_ADMIN) if who == "institution_admin" else platform_admin)
    assert tenant_b.staff  # made before the snapshot
    before_b, before_counts = rows_of(tenant_b.id), table_counts()
    tampered = [r for r in staff_rules(app, with_institution=True) if set(r.arguments) & set(OBJECT_ARGS)]
    assert {"org.department_edit", "org.touchpoint_edit", "org.staff_edit", "org.staff_unlock"} <= \
        {r.endpoint for r in tampered}
    failures = []
    for rule in tampered:
        url = build_url(rule, tenant_a.id, tenant_b)  # A's institution id, B's object ids
        for method in methods(rule):
            response = client.open(url, method=method, data=post_data(rule.endpoint, tenant_b)
                                   if method == "POST" else None)
            if response.status_code != 404:
                failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, expected 404")
    assert not failures, "\n".join(failures)
    assert rows_of(tenant_b.id) == before_b
    assert table_counts() == before_counts


def test_anonymous_visitor_is_sent_to_login_from_every_staff_url(app, client, tenant_b):
    assert tenant_b.staff  # made before the snapshot
    before = table_counts()
    failures = []
    for rule in staff_rules(app, with_institution=True) + staff_rules(app, with_institution=False):
        url = build_url(rule, tenant_b.id, tenant_b) if "institution_id" in rule.arguments else url_for(
            rule.endpoint, **{name: tenant_b.staff.id if name == "staff_id" else tenant_b.institution.region_id
                              for name in rule.arguments})
        for method in methods(rule):
            response = client.open(url, method=method, data=post_data(rule.endpoint, tenant_b)
                                   if method == "POST" else None)
            if response.status_code != 302 or not response.headers["Location"].startswith("/login"):
                failures.append(f"{method} {url}: {response.status_code} {response.headers.get('Location')}")
    assert not failures, "\n".join(failures)
    assert table_counts() == before


def _user_for(role: Role, tenant: Tenant, city_admin, platform_admin) -> StaffUser:
    return {Role.REGIONAL_ADMIN: city_admin, Role.PLATFORM_ADMIN: platform_admin}.get(role) or tenant.role_user(role)


def test_every_institution_route_is_classified(app):
    unclassified = {r.endpoint for r in staff_rules(app, with_institution=True)} - set(INSTITUTION_ACCESS)
    assert not unclassified, f"add these routes to INSTITUTION_ACCESS with the roles that may use them: {unclassified}"


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_roles_reach_exactly_the_pages_of_their_own_institution_their_role_allows(
        app, client, tenant_a, city_admin, platform_admin, role):
    login(client, _user_for(role, tenant_a, city_admin, platform_admin))
    assert tenant_a.staff  # made before the snapshot
    before = rows_of(tenant_a.id)
    failures = []
    for rule in staff_rules(app, with_institution=True):
        allowed = role in INSTITUTION_ACCESS.get(rule.endpoint, set())
        url = build_url(rule, tenant_a.id, tenant_a)
        if "GET" in rule.methods:
            expected = 200 if allowed else 403
            response = client.get(url)
        else:  # POST-only actions (toggle, unlock) succeed with a redirect; a reset shows the new password
            expected = (200 if rule.endpoint == "org.staff_reset_password" else 302) if allowed else 403
            response = client.post(url, data=post_data(rule.endpoint, tenant_a))
        if response.status_code != expected:
            failures.append(f"{response.request.method} {url}: {response.status_code}, expected {expected}")
        if "POST" in rule.methods and "GET" in rule.methods and not allowed:
            response = client.post(url, data=post_data(rule.endpoint, tenant_a))
            if response.status_code != 403:
                failures.append(f"POST {url}: {response.status_code}, expected 403")
    assert not failures, "\n".join(failures)
    if role not in MANAGE | INSTITUTION_RECORD:
        assert rows_of(tenant_a.id) == before


def test_every_route_without_an_institution_is_classified(app):
    unclassified = {r.endpoint for r in staff_rules(app, with_institution=False)} - set(NON_INSTITUTION_ACCESS)
    assert not unclassified, (f"these staff routes take no institution id, so the isolation matrix cannot check them; "
                              f"scope them by institution or add them to NON_INSTITUTION_ACCESS: {unclassified}")


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_routes_without_an_institution_admit_only_their_roles(app, client, tenant_a, tenant_b, city_admin,
                                                              platform_admin, role):
    target_admin = make_staff([Role.REGIONAL_ADMIN], region=make_region())
    user = _user_for(role, tenant_a, city_admin, platform_admin)
    login(client, user)
    own_notice = Notification(user_id=user.id, kind="test", key=unique("notice"), subject="通知", body="",
                              created_at=utcnow())
    db.session.add(own_notice)
    db.session.flush()
    before = table_counts()
    failures = []
    for rule in staff_rules(app, with_institution=False):
        allowed_roles, ok_status = NON_INSTITUTION_ACCESS[rule.endpoint]
        allowed = role in allowed_roles
        args = {"region_id": tenant_b.institution.region_id, "staff_id": target_admin.id,
                "notification_id": own_notice.id}
        url = url_for(rule.endpoint, **{name: args[name] for name in rule.arguments})
        if "GET" in rule.methods:
            response = client.get(url)
            expected = ok_status if allowed else 403
        else:
            response = client.post(url)
            expected = 302 if allowed else 403
        if response.status_code != expected:
            failures.append(f"{response.request.method} {url}: {response.status_code}, expected {expected}")
        if "POST" in rule.methods and "GET" in rule.methods and not allowed:
            response = client.post(url, data=post_data(rule.endpoint, tenant_b))
            if response.status_code != 403:
                failures.append(f"POST {url}: {response.status_code}, expected 403")
    assert not failures, "\n".join(failures)
    if role not in PLATFORM:
        assert table_counts() == before


def test_non_platform_roles_get_403_on_region_admin(client, tenant_a, city_admin):
    for user in [tenant_a.role_user(r) for r in Role.institution_roles()] + [city_admin]:
        login(client, user)
        assert client.get("/admin/regions").status_code == 403, user.username


# Positive cases --------------------------------------------------------

def test_platform_admin_reaches_every_page_of_any_institution(app, client, platform_admin, tenant_b):
    elsewhere = make_institution(make_region())
    department = make_department(elsewhere)
    others = Tenant(elsewhere, department, make_touchpoint(elsewhere, department),
                    make_staff([Role.LEADERSHIP], elsewhere))
    login(client, platform_admin)
    failures = []
    for target in (tenant_b, others):
        for rule in staff_rules(app, with_institution=True):
            if "GET" in rule.methods:
                url = build_url(rule, target.id, target)
                status = client.get(url).status_code
                if status != 200:
                    failures.append(f"GET {url}: {status}")
    assert not failures, "\n".join(failures)


def test_city_admin_sees_every_demo_institution_and_manages_none_of_their_departments(client, city_admin, ctx):
    login(client, city_admin)
    listing = body(client.get("/admin/institutions"))
    for key in ("rmyy", "zyy", "sq"):
        institution = demo_institution(key)
        assert institution.name in listing
        for path in ("/", "/departments", "/touchpoints", "/staff", "/audit", "/edit"):
            assert client.get(f"/i/{institution.id}{path}").status_code == 200, path
        assert client.get(f"/i/{institution.id}/departments/new").status_code == 403


def test_institution_admin_manages_own_institution(admin_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/departments/new",
                                 data={"code": "OWN1", "name": "自有科室", "kind": "clinical"})
    assert response.status_code == 302
    assert db.session.scalar(select(Department).where(Department.institution_id == tenant_a.id,
                                                      Department.code == "OWN1")) is not None


# Lists and audit never show another institution's rows ----------------

def test_institution_list_shows_staff_only_their_own_institution(client, tenant_a, tenant_b):
    login(client, tenant_a.role_user(Role.COMPLAINT_OFFICER))
    rows = table_body(client.get("/admin/institutions"))
    assert tenant_a.institution.name in rows
    assert tenant_b.institution.name not in rows
    assert tenant_b.institution.name not in table_body(
        client.get(f"/admin/institutions?q={tenant_b.institution.name}"))


def test_regional_admin_of_another_province_lists_no_demo_institution(client, tenant_b, other_province_admin):
    login(client, other_province_admin)
    response = client.get("/admin/institutions")
    assert response.status_code == 200
    assert tenant_b.institution.name not in table_body(response)


def test_department_search_never_finds_another_institutions_department(client, tenant_a, tenant_b):
    name = unique("只属于乙院的科室")
    make_department(tenant_b.institution, name=name)
    login(client, tenant_a.role_user(Role.INSTITUTION_ADMIN))
    assert name not in table_body(client.get(f"/i/{tenant_a.id}/departments?q={name}"))
    login(client, tenant_b.role_user(Role.INSTITUTION_ADMIN))
    assert name in table_body(client.get(f"/i/{tenant_b.id}/departments?q={name}"))


def test_audit_of_all_institutions_covers_only_the_regional_admins_region(
        client, tenant_b, city_admin, platform_admin, other_province_admin):
    record("test", "test.only_in_b", tenant_b.department)
    db.session.flush()
    query = "/admin/audit?action=test.only_in_b"
    login(client, other_province_admin)
    assert "test.only_in_b" not in table_body(client.get(query))
    for user in (city_admin, platform_admin):
        login(client, user)
        assert "test.only_in_b" in table_body(client.get(query)), user.username


def test_institution_audit_never_shows_or_suggests_another_institutions_actions(client, tenant_a, tenant_b):
    record("test", "test.only_in_b", tenant_b.department)
    db.session.flush()
    login(client, tenant_a.role_user(Role.INSTITUTION_ADMIN))
    page = body(client.get(f"/i/{tenant_a.id}/audit"))
    assert "test.only_in_b" not in page  # neither as an entry nor as a filter suggestion
    login(client, tenant_b.role_user(Role.INSTITUTION_ADMIN))
    page = body(client.get(f"/i/{tenant_b.id}/audit"))
    assert "test.only_in_b" in page.split("<tbody>", 1)[1]
    assert '<option value="test.only_in_b">' in page


# Ids of another institution smuggled in the form body -----------------

def test_touchpoint_cannot_be_attached_to_another_institutions_department(admin_client, tenant_a, tenant_b):
    response = admin_client.post(f"/i/{tenant_a.id}/touchpoints/new", data={
        "code": "SMUGGLE", "name": "窗口", "kind": "window", "department_id": tenant_b.department.id})
    assert response.status_code == 400
    assert db.session.scalar(select(Touchpoint).where(Touchpoint.code == "SMUGGLE")) is None


def test_department_parent_cannot_be_another_institutions_department(admin_client, tenant_a, tenant_b):
    response = admin_client.post(f"/i/{tenant_a.id}/departments/new", data={
        "code": "SMUGGLE", "name": "科室", "kind": "clinical", "parent_id": tenant_b.department.id})
    assert response.status_code == 400
    assert db.session.scalar(select(Department).where(Department.code == "SMUGGLE")) is None


def test_staff_cannot_be_bound_to_another_institutions_department(admin_client, tenant_a, tenant_b):
    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data={
        "username": "smuggled", "display_name": "人员", "roles": ["department_handler"],
        "departments": [tenant_b.department.id]})
    assert response.status_code == 400
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "smuggled")) is None


@pytest.mark.parametrize("role", ["platform_admin", "regional_admin"])
def test_institution_admin_cannot_grant_a_role_above_the_institution(admin_client, tenant_a, role):
    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data={
        "username": "escalated", "display_name": "人员", "roles": [role]})
    assert response.status_code == 400
    assert db.session.scalar(select(StaffUser).where(StaffUser.username == "escalated")) is None
    response = admin_client.post(f"/i/{tenant_a.id}/staff/{tenant_a.staff.id}/edit", data={
        "display_name": "人员", "roles": [role]})
    assert response.status_code == 400
    assert db.session.scalars(select(StaffRole.role).where(StaffRole.staff_id == tenant_a.staff.id)).all() == \
        ["followup_nurse"]


def test_regional_admin_cannot_place_an_institution_outside_their_region(client, city_admin, tenant_a):
    outside = make_region()
    login(client, city_admin)
    data = {"name": "区外医院", "registration_code": "OUTSIDE-1", "level": "secondary", "grade": "a",
            "category": "general", "region_id": outside.id}
    assert client.post("/admin/institutions/new", data=data).status_code == 400
    assert db.session.scalar(select(Institution).where(Institution.registration_code == "OUTSIDE-1")) is None
    data.update(name=tenant_a.institution.name, registration_code=tenant_a.institution.registration_code)
    assert client.post(f"/i/{tenant_a.id}/edit", data=data).status_code == 400
    assert db.session.scalar(select(Institution.region_id).where(Institution.id == tenant_a.id)) != outside.id


def test_regional_admin_does_not_see_a_region_whose_path_merely_shares_a_prefix(client, tenant_b):
    """Region paths are "/1/2/3/"; the trailing slash keeps region 3 from claiming region 30."""
    district = tenant_b.institution.region
    lookalike = Region(code=unique("8"), name="相似路径区", level="county", parent_id=district.parent_id,
                       path=district.path.rstrip("/") + "0/")
    db.session.add(lookalike)
    db.session.flush()
    hidden = make_institution(lookalike)
    login(client, make_staff([Role.REGIONAL_ADMIN], region=district))
    assert client.get(f"/i/{tenant_b.id}/").status_code == 200  # control: the admin's own district
    assert client.get(f"/i/{hidden.id}/").status_code == 404
    assert hidden.name not in table_body(client.get("/admin/institutions"))
