"""A generated password is shown on the response page only: never flashed, never in the session cookie
(Flask's session cookie is signed, not encrypted: anyone holding it can read it)."""
from __future__ import annotations

import json

from organisation.models import Role
from tests.factories import make_staff

from .conftest import body, initial_password


def session_cookie_contents(client) -> str:
    """Everything the browser's session cookie says, decoded as anyone holding it could."""
    app = client.application
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain=app.config["SERVER_NAME"])
    data = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    return json.dumps(data, ensure_ascii=False, default=str)


def test_a_reset_password_is_on_the_page_and_not_in_the_cookie(admin_client, tenant_a):
    user = make_staff([Role.FOLLOWUP_NURSE], tenant_a.institution)
    response = admin_client.post(f"/i/{tenant_a.id}/staff/{user.id}/reset-password")
    cookie = session_cookie_contents(admin_client)
    assert "初始密码" not in cookie and "_flashes" not in cookie
    assert response.status_code == 200
    password = initial_password(response)
    assert password not in cookie
    assert password not in body(admin_client.get(f"/i/{tenant_a.id}/staff/{user.id}/edit"))  # once only
    assert password not in session_cookie_contents(admin_client)


def test_a_new_accounts_password_is_on_the_page_and_not_in_the_cookie(admin_client, tenant_a):
    response = admin_client.post(f"/i/{tenant_a.id}/staff/new", data={
        "username": "secret.check", "display_name": "新护士", "roles": ["followup_nurse"]})
    cookie = session_cookie_contents(admin_client)
    assert "初始密码" not in cookie
    assert response.status_code == 200
    assert initial_password(response) not in cookie
    assert "secret.check" in body(response)


def test_a_new_platform_admins_password_is_not_in_the_cookie(client, platform_admin, tenant_a):
    from tests.factories import login

    login(client, platform_admin)
    response = client.post("/admin/staff/new", data={"username": "secret.region", "display_name": "区卫健局",
                                                     "roles": ["regional_admin"],
                                                     "region_id": tenant_a.institution.region_id})
    assert response.status_code == 200
    assert initial_password(response) not in session_cookie_contents(client)
