"""Optional two-factor sign-in for administrators (TOTP): enrolment with a QR code shown once, the code asked
after the password, each code used once, slowed down after failures, and a reset by another administrator."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pyotp
import pytest

from core.db import utcnow
from organisation import sessions
from organisation.models import Role, StaffUser
from tests.factories import PASSWORD, demo_user, login, make_staff

from .conftest import audit_entries, body, fresh


@pytest.fixture
def admin(tenant_a) -> StaffUser:
    return make_staff([Role.INSTITUTION_ADMIN], tenant_a.institution)


@pytest.fixture
def enrolled(admin) -> StaffUser:
    admin.totp_secret = pyotp.random_base32()
    admin.totp_enabled_at = utcnow()
    return admin


def code_of(user: StaffUser, offset: int = 0) -> str:
    return pyotp.TOTP(user.totp_secret).at(utcnow(), counter_offset=offset)


def signed_in(client, tenant) -> bool:
    return client.get(f"/i/{tenant.id}/").status_code == 200


def cookie_text(client) -> str:
    app = client.application
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain=app.config["SERVER_NAME"])
    return json.dumps(app.session_interface.get_signing_serializer(app).loads(cookie.value), default=str)


def test_an_admin_enrols_with_a_qr_code_shown_once(client, admin, tenant_a):
    login(client, admin)
    assert "未开启" in body(client.get("/account/two-factor"))
    response = client.post("/account/two-factor/setup")
    assert response.status_code == 200 and "<svg" in body(response)
    [secret] = re.findall(r'<code id="totp-secret">([A-Z2-7]+)</code>', body(response))
    assert secret == fresh(admin).totp_secret and fresh(admin).totp_enabled_at is None
    assert secret not in cookie_text(client) and secret not in body(client.get("/account/two-factor"))
    assert client.post("/account/two-factor/confirm", data={"code": "000000"}).status_code == 400
    response = client.post("/account/two-factor/confirm", data={"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert fresh(admin).totp_enabled_at is not None
    assert [e.action for e in audit_entries(target_id=str(admin.id)) if "totp" in e.action] == [
        "staff.totp_setup", "staff.totp_enable"]


def test_only_administrators_may_enrol(client, tenant_a):
    nurse = make_staff([Role.FOLLOWUP_NURSE], tenant_a.institution)
    login(client, nurse)
    assert client.get("/account/two-factor").status_code == 403
    assert client.post("/account/two-factor/setup").status_code == 403
    assert "/account/two-factor" not in body(client.get(f"/i/{tenant_a.id}/"))


def test_the_password_alone_does_not_sign_an_enrolled_admin_in(client, enrolled, tenant_a):
    response = client.post(f"/login?next=/i/{tenant_a.id}/staff",
                           data={"username": enrolled.username, "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login/two-factor"
    assert not signed_in(client, tenant_a)
    assert client.get("/login/two-factor").status_code == 200
    response = client.post("/login/two-factor", data={"code": code_of(enrolled, 5)})
    assert response.status_code == 401 and "验证码不正确" in body(response)
    assert audit_entries(action="staff.login_second_factor_failed", target_id=str(enrolled.id))
    assert not signed_in(client, tenant_a)
    response = client.post("/login/two-factor", data={"code": code_of(enrolled)})
    assert response.status_code == 302 and response.headers["Location"] == f"/i/{tenant_a.id}/staff"
    assert signed_in(client, tenant_a)
    assert audit_entries(action="staff.login", target_id=str(enrolled.id))


def test_a_code_is_accepted_once(client, new_client, enrolled, tenant_a):
    code = code_of(enrolled)
    client.post("/login", data={"username": enrolled.username, "password": PASSWORD})
    assert client.post("/login/two-factor", data={"code": code}).status_code == 302
    other = new_client()
    other.post("/login", data={"username": enrolled.username, "password": PASSWORD})
    assert other.post("/login/two-factor", data={"code": code}).status_code == 401
    assert not signed_in(other, tenant_a)


def test_wrong_codes_are_slowed_down(app, client, enrolled):
    client.post("/login", data={"username": enrolled.username, "password": PASSWORD})
    for _ in range(app.config["LOGIN_FREE_FAILURES"]):
        assert client.post("/login/two-factor", data={"code": code_of(enrolled, 7)}).status_code == 401
    response = client.post("/login/two-factor", data={"code": code_of(enrolled)})
    assert response.status_code == 429 and "秒后再试" in body(response)


def test_the_code_must_follow_the_password_within_minutes(client, enrolled, tenant_a, monkeypatch):
    client.post("/login", data={"username": enrolled.username, "password": PASSWORD})
    later = utcnow() + timedelta(minutes=6)
    monkeypatch.setattr(sessions, "utcnow", lambda: later)
    response = client.post("/login/two-factor", data={"code": code_of(enrolled)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not signed_in(client, tenant_a)


def test_the_user_switches_it_off_with_a_code(client, enrolled):
    login(client, enrolled)
    assert client.post("/account/two-factor/disable", data={"code": "123456"}).status_code == 400
    assert client.post("/account/two-factor/disable", data={"code": code_of(enrolled)}).status_code == 302
    assert fresh(enrolled).totp_secret is None
    assert audit_entries(action="staff.totp_disable", target_id=str(enrolled.id))


def test_an_admin_resets_a_colleagues_lost_second_factor(admin_client, new_client, enrolled, tenant_a):
    colleague = new_client()
    login(colleague, enrolled)
    assert "重置两步验证" in body(admin_client.get(f"/i/{tenant_a.id}/staff/{enrolled.id}/edit"))
    assert admin_client.post(f"/i/{tenant_a.id}/staff/{enrolled.id}/reset-two-factor").status_code == 302
    assert fresh(enrolled).totp_enabled_at is None and fresh(enrolled).totp_secret is None
    [entry] = audit_entries(action="staff.totp_reset", target_id=str(enrolled.id))
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id
    assert not signed_in(colleague, tenant_a)  # the sessions ended with it
    fresh_browser = new_client()
    assert fresh_browser.post("/login", data={"username": enrolled.username, "password": PASSWORD}).headers[
        "Location"] == "/"


def test_the_platform_admin_resets_a_regional_admins_second_factor(client, platform_admin, city_admin):
    city_admin.totp_secret, city_admin.totp_enabled_at = pyotp.random_base32(), utcnow()
    login(client, platform_admin)
    assert client.post(f"/admin/staff/{city_admin.id}/reset-two-factor").status_code == 302
    assert fresh(city_admin).totp_enabled_at is None
    assert audit_entries(action="staff.totp_reset", target_id=str(city_admin.id))


def test_demo_accounts_sign_in_with_the_documented_password_alone(ctx, new_client):
    from organisation.demo import DEMO_PASSWORD

    for username in ("platform", "region", "rmyy-admin"):
        assert demo_user(username).totp_enabled_at is None
        response = new_client().post("/login", data={"username": username, "password": DEMO_PASSWORD})
        assert response.status_code == 302 and response.headers["Location"] == "/", username
