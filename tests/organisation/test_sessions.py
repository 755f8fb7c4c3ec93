"""Staff sessions end on the server: a copy of the cookie taken before logout, a password change, a role
change or a deactivation opens nothing afterwards, and idle or too-old sessions expire."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db import utcnow
from core.extensions import db
from organisation import sessions
from organisation.models import Role, StaffSession, StaffUser
from tests.factories import PASSWORD, make_staff

from .conftest import audit_entries, body


@pytest.fixture
def nurse(tenant_a) -> StaffUser:
    return make_staff([Role.FOLLOWUP_NURSE], tenant_a.institution)


def sign_in(client, user: StaffUser) -> None:
    assert client.get_cookie("session", domain=client.application.config["SERVER_NAME"]) is None
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, body(response)


def copy_of_cookie(client):
    cookie = client.get_cookie("session", domain=client.application.config["SERVER_NAME"])
    assert cookie is not None
    return cookie


def browser_with(new_client, cookie):
    """Another browser holding a copy of a saved session cookie (what someone at the ward PC could keep)."""
    other = new_client()
    other.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return other


def opens_call_list(client, tenant) -> bool:
    response = client.get(f"/i/{tenant.id}/survey/followup")
    if response.status_code == 302 and response.headers["Location"].startswith("/login"):
        return False
    assert response.status_code == 200, response.status_code
    return True


def test_a_cookie_saved_before_logout_no_longer_opens_the_call_list(client, new_client, nurse, tenant_a):
    sign_in(client, nurse)
    assert opens_call_list(client, tenant_a)
    saved = copy_of_cookie(client)
    assert client.post("/logout").status_code == 302
    assert not opens_call_list(browser_with(new_client, saved), tenant_a)
    [row] = db.session.scalars(select(StaffSession).where(StaffSession.user_id == nurse.id))
    assert row.ended_at is not None and row.end_reason == sessions.LOGOUT


def test_logout_ends_this_browsers_session_only(client, new_client, nurse, tenant_a):
    other_pc = new_client()
    sign_in(client, nurse)
    sign_in(other_pc, nurse)
    client.post("/logout")
    assert opens_call_list(other_pc, tenant_a)


def test_password_reset_by_an_admin_ends_a_saved_cookie(admin_client, new_client, nurse, tenant_a):
    client = new_client()  # the nurse's own browser
    sign_in(client, nurse)
    saved = copy_of_cookie(client)
    assert admin_client.post(f"/i/{tenant_a.id}/staff/{nurse.id}/reset-password").status_code in (200, 302)
    assert not opens_call_list(browser_with(new_client, saved), tenant_a)
    assert not opens_call_list(client, tenant_a)


def test_changing_ones_password_ends_the_other_sessions_and_renews_this_one(client, new_client, nurse, tenant_a):
    sign_in(client, nurse)
    saved = copy_of_cookie(client)
    response = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": "Brand-new-2026x", "confirm": "Brand-new-2026x"})
    assert response.status_code == 302
    assert opens_call_list(client, tenant_a)
    assert not opens_call_list(browser_with(new_client, saved), tenant_a)  # the old token of this very browser


def test_a_role_change_ends_a_saved_cookie(admin_client, new_client, nurse, tenant_a):
    client = new_client()  # the nurse's own browser
    sign_in(client, nurse)
    saved = copy_of_cookie(client)
    response = admin_client.post(f"/i/{tenant_a.id}/staff/{nurse.id}/edit", data={
        "username": nurse.username, "display_name": nurse.display_name,
        "roles": [Role.FOLLOWUP_NURSE.value, Role.LEADERSHIP.value]})
    assert response.status_code == 302
    assert not opens_call_list(browser_with(new_client, saved), tenant_a)


def test_a_saved_name_change_keeps_the_session(admin_client, new_client, nurse, tenant_a):
    client = new_client()  # the nurse's own browser
    sign_in(client, nurse)
    response = admin_client.post(f"/i/{tenant_a.id}/staff/{nurse.id}/edit", data={
        "username": nurse.username, "display_name": "新名字", "roles": [Role.FOLLOWUP_NURSE.value]})
    assert response.status_code == 302
    assert opens_call_list(client, tenant_a)


def test_deactivating_the_account_ends_a_saved_cookie(admin_client, new_client, nurse, tenant_a):
    client = new_client()  # the nurse's own browser
    sign_in(client, nurse)
    saved = copy_of_cookie(client)
    assert admin_client.post(f"/i/{tenant_a.id}/staff/{nurse.id}/toggle").status_code == 302
    assert not opens_call_list(browser_with(new_client, saved), tenant_a)
    # Reactivated, the account needs a new sign-in: the old cookie stays dead.
    assert admin_client.post(f"/i/{tenant_a.id}/staff/{nurse.id}/toggle").status_code == 302
    assert not opens_call_list(browser_with(new_client, saved), tenant_a)


def clock_at(monkeypatch, moment):
    monkeypatch.setattr(sessions, "utcnow", lambda: moment)


def test_an_idle_session_expires_after_the_configured_time(app, client, nurse, tenant_a, monkeypatch):
    start = utcnow()
    clock_at(monkeypatch, start)
    sign_in(client, nurse)
    idle = timedelta(seconds=app.config["SESSION_IDLE_TIMEOUT"])
    assert idle == timedelta(minutes=30)  # the default for shared ward PCs
    clock_at(monkeypatch, start + idle - timedelta(seconds=5))
    assert opens_call_list(client, tenant_a)  # used just in time: the idle clock starts again
    clock_at(monkeypatch, start + 2 * idle - timedelta(seconds=10))
    assert opens_call_list(client, tenant_a)
    clock_at(monkeypatch, start + 3 * idle)
    response = client.get(f"/i/{tenant_a.id}/survey/followup", follow_redirects=True)
    assert "长时间未操作" in body(response) and response.request.path == "/login"
    [entry] = audit_entries(action="staff.session_expired", target_id=str(nurse.id))
    assert entry.data == {"reason": sessions.IDLE}
    clock_at(monkeypatch, start + 3 * idle + timedelta(seconds=1))
    assert not opens_call_list(client, tenant_a)  # ended for good, not only while idle


def test_the_idle_timeout_is_a_setting(app, client, nurse, tenant_a, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_IDLE_TIMEOUT", 120)
    start = utcnow()
    clock_at(monkeypatch, start)
    sign_in(client, nurse)
    clock_at(monkeypatch, start + timedelta(seconds=121))
    assert not opens_call_list(client, tenant_a)


def test_a_busy_session_still_ends_at_its_absolute_lifetime(app, client, nurse, tenant_a, monkeypatch):
    start = utcnow()
    clock_at(monkeypatch, start)
    sign_in(client, nurse)
    lifetime = app.permanent_session_lifetime
    moment = start
    while moment + timedelta(minutes=20) < start + lifetime:
        moment += timedelta(minutes=20)
        clock_at(monkeypatch, moment)
        assert opens_call_list(client, tenant_a)
    clock_at(monkeypatch, start + lifetime + timedelta(minutes=1))
    assert not opens_call_list(client, tenant_a)
    assert audit_entries(action="staff.session_expired", target_id=str(nurse.id))[-1].data == {
        "reason": sessions.LIFETIME}


def test_the_daily_purge_drops_only_long_ended_sessions(ctx, nurse):
    from organisation.tasks import purge_sessions

    now = utcnow()
    old = sessions.start_session(nurse, now=now - timedelta(days=40))
    sessions.end_session(old, now=now - timedelta(days=40))
    recent = sessions.start_session(nurse, now=now - timedelta(days=1))
    sessions.end_session(recent, now=now - timedelta(days=1))
    live = sessions.start_session(nurse, now=now)
    assert purge_sessions(now.isoformat()) >= 1
    left = set(db.session.scalars(select(StaffSession.token_hash).where(StaffSession.user_id == nurse.id)))
    assert left == {sessions._hash(recent), sessions._hash(live)}
    assert audit_entries(action="staff_session.purge")
