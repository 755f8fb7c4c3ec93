"""Staff login, lockout, forced password change, sessions and redirects."""
from __future__ import annotations

from urllib.parse import unquote, urlencode

import pytest
from sqlalchemy import select

from core.extensions import db
from organisation.models import Department, Role, StaffUser
from organisation.passwords import verify_password
from tests.factories import PASSWORD, login, make_staff

from .conftest import audit_entries, body, fresh, initial_password

WRONG = "Wrong-password-2026"
BAD_CREDENTIALS = "用户名或密码不正确"


@pytest.fixture
def staff(tenant_a) -> StaffUser:
    return make_staff([Role.COMPLAINT_OFFICER], tenant_a.institution)


def post_login(client, username: str, password: str, next_url: str | None = None):
    url = "/login" if next_url is None else "/login?" + urlencode({"next": next_url})
    return client.post(url, data={"username": username, "password": password})


def is_logged_in(client, tenant) -> bool:
    response = client.get(f"/i/{tenant.id}/")
    if response.status_code == 302 and response.headers["Location"].startswith("/login"):
        return False
    assert response.status_code == 200, response.status_code
    return True


# Login -----------------------------------------------------------------

def test_correct_password_logs_in_and_records_the_login(client, staff, tenant_a):
    response = post_login(client, staff.username, PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert is_logged_in(client, tenant_a)
    assert fresh(staff).last_login_at is not None
    [entry] = audit_entries(action="staff.login", target_id=str(staff.id))
    assert entry.actor_id == staff.id and entry.institution_id == tenant_a.id


def test_username_is_matched_without_case_or_surrounding_spaces(client, staff, tenant_a):
    assert post_login(client, f"  {staff.username.upper()} ", PASSWORD).status_code == 302
    assert is_logged_in(client, tenant_a)


def test_wrong_password_gets_401_with_a_chinese_message(client, staff, tenant_a):
    response = post_login(client, staff.username, WRONG)
    assert response.status_code == 401
    assert BAD_CREDENTIALS in body(response)
    assert not is_logged_in(client, tenant_a)
    [entry] = audit_entries(action="staff.login_failed", target_id=str(staff.id))
    assert entry.actor_label == "login"


def test_unknown_username_gets_the_same_answer_as_a_wrong_password(client):
    response = post_login(client, "nobody-here", WRONG)
    assert response.status_code == 401
    assert BAD_CREDENTIALS in body(response)


def test_login_form_without_a_password_is_rejected_with_400(client, staff):
    response = client.post("/login", data={"username": staff.username, "password": ""})
    assert response.status_code == 400
    assert not audit_entries(action="staff.login_failed", target_id=str(staff.id))


def test_inactive_user_cannot_log_in_even_with_the_right_password(client, staff, tenant_a):
    staff.active = False
    response = post_login(client, staff.username, PASSWORD)
    assert response.status_code == 401
    assert BAD_CREDENTIALS in body(response)
    assert not is_logged_in(client, tenant_a)


def test_logged_in_user_visiting_login_is_sent_home(client, staff):
    login(client, staff)
    response = client.get("/login")
    assert response.status_code == 302 and response.headers["Location"] == "/"


# Forced password change ------------------------------------------------

def test_user_with_an_initial_password_is_sent_to_change_it_from_any_page(client, tenant_a):
    user = make_staff([Role.INSTITUTION_ADMIN], tenant_a.institution, must_change_password=True)
    login(client, user)
    for path in ("/", f"/i/{tenant_a.id}/", f"/i/{tenant_a.id}/departments", "/admin/institutions"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/account/password", path
    response = client.post(f"/i/{tenant_a.id}/departments/new",
                           data={"code": "BEFORE-CHANGE", "name": "改密前", "kind": "clinical"})
    assert response.headers["Location"] == "/account/password"
    assert db.session.scalar(select(Department).where(Department.code == "BEFORE-CHANGE")) is None
    assert client.get("/account/password").status_code == 200


def test_after_changing_the_password_the_user_can_work(client, tenant_a):
    user = make_staff([Role.INSTITUTION_ADMIN], tenant_a.institution, must_change_password=True)
    assert post_login(client, user.username, PASSWORD).status_code == 302
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": "Brand-new-2026x", "confirm": "Brand-new-2026x"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert is_logged_in(client, tenant_a)
    user = fresh(user)
    assert not user.must_change_password
    assert user.password_changed_at is not None
    assert verify_password(user.password_hash, "Brand-new-2026x")
    [entry] = audit_entries(action="staff.change_password", target_id=str(user.id))
    assert entry.actor_id == user.id


@pytest.mark.parametrize(("current", "new", "confirm", "message"), [
    (PASSWORD, "Short1x", "Short1x", "密码至少需要 12 个字符"),
    (PASSWORD, "Eleven-char", "Eleven-char", "密码至少需要 12 个字符"),
    (PASSWORD, "1234567890123", "1234567890123", "这是常见密码"),
    (PASSWORD, "Password2026!", "Password2026!", "这是常见密码"),
    (PASSWORD, "woaini5201314", "woaini5201314", "这是常见密码"),
    (PASSWORD, "zzzzzzzzzzzzz", "zzzzzzzzzzzzz", "密码过于简单"),
    (PASSWORD, "{username}-2026", "{username}-2026", "密码不能包含用户名"),
    (PASSWORD, "测试人员的新密码2026", "测试人员的新密码2026", "密码不能包含您的姓名"),
    (PASSWORD, PASSWORD, PASSWORD, "新密码不能与当前密码相同"),
    ("Not-my-password-1", "Brand-new-2026x", "Brand-new-2026x", "当前密码不正确"),
    (PASSWORD, "Brand-new-2026x", "Brand-new-2026y", "两次输入的密码不一致"),
])
def test_password_change_is_refused_with_the_reason(client, staff, current, new, confirm, message):
    login(client, staff)
    before = staff.password_hash
    response = client.post("/account/password", data={
        "current_password": current, "new_password": new.format(username=staff.username),
        "confirm": confirm.format(username=staff.username)})
    assert response.status_code == 400
    assert message in body(response)
    assert fresh(staff).password_hash == before


# Sessions --------------------------------------------------------------

def test_password_reset_by_an_admin_ends_the_users_existing_session(admin_client, new_client, staff, tenant_a):
    user_client = new_client()
    assert post_login(user_client, staff.username, PASSWORD).status_code == 302
    assert is_logged_in(user_client, tenant_a)

    response = admin_client.post(f"/i/{tenant_a.id}/staff/{staff.id}/reset-password")
    assert response.status_code == 200
    assert staff.username in body(response)
    initial = initial_password(response)
    assert audit_entries(action="staff.reset_password", target_id=str(staff.id))

    assert not is_logged_in(user_client, tenant_a)  # the old cookie no longer authenticates
    assert post_login(user_client, staff.username, PASSWORD).status_code == 401
    assert post_login(user_client, staff.username, initial).status_code == 302
    assert user_client.get(f"/i/{tenant_a.id}/").headers["Location"] == "/account/password"


def test_changing_ones_password_keeps_this_session_and_ends_the_others(client, new_client, staff, tenant_a):
    other_browser = new_client()
    for c in (client, other_browser):
        assert post_login(c, staff.username, PASSWORD).status_code == 302
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": "Brand-new-2026x", "confirm": "Brand-new-2026x"})
    assert response.status_code == 302
    assert is_logged_in(client, tenant_a)
    assert not is_logged_in(other_browser, tenant_a)


def test_deactivating_a_user_ends_their_session(admin_client, new_client, staff, tenant_a):
    user_client = new_client()
    login(user_client, staff)
    assert is_logged_in(user_client, tenant_a)
    assert admin_client.post(f"/i/{tenant_a.id}/staff/{staff.id}/toggle").status_code == 302
    assert not is_logged_in(user_client, tenant_a)


def test_logout_requires_post(client, staff, tenant_a):
    login(client, staff)
    assert client.get("/logout").status_code == 405
    assert is_logged_in(client, tenant_a)
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not is_logged_in(client, tenant_a)
    [entry] = audit_entries(action="staff.logout", target_id=str(staff.id))
    assert entry.actor_id == staff.id


# Redirects after login -------------------------------------------------

@pytest.mark.parametrize("target", [
    "https://evil.example/phish",
    "//evil.example/phish",
    "/\\evil.example/phish",
    "/\t/evil.example/phish",
    "javascript:alert(1)",
    "evil.example",
])
def test_next_parameter_never_leaves_the_site(client, staff, target):
    response = post_login(client, staff.username, PASSWORD, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_parameter_returns_to_a_page_on_the_site(client, staff, tenant_a):
    target = f"/i/{tenant_a.id}/departments?q=内科"
    response = post_login(client, staff.username, PASSWORD, next_url=target)
    assert response.status_code == 302
    assert unquote(response.headers["Location"]) == target


def test_login_page_is_offered_with_next_when_a_page_needs_login(client, tenant_a):
    response = client.get(f"/i/{tenant_a.id}/departments")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_deactivating_an_institution_ends_its_staffs_sessions_and_logins(client, new_client, platform_admin, staff,
                                                                         tenant_a):
    user_client = new_client()
    assert post_login(user_client, staff.username, PASSWORD).status_code == 302
    assert is_logged_in(user_client, tenant_a)
    login(client, platform_admin)
    assert client.post(f"/i/{tenant_a.id}/toggle").status_code == 302
    assert not is_logged_in(user_client, tenant_a)
    response = post_login(user_client, staff.username, PASSWORD)
    assert response.status_code == 401 and BAD_CREDENTIALS in body(response)
