"""Bad input anywhere in a URL or form is a 4xx with a Chinese message, never a 500."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from organisation.models import StaffUser
from tests.factories import demo_institution, login

TOO_BIG = "99999999999999999999"  # beyond PostgreSQL's integer (and bigint) range


@pytest.fixture
def platform_client(app, client):
    with app.app_context():
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == "platform"))
        login(client, user)
    return client


@pytest.fixture
def rmyy_id(app):
    with app.app_context():
        return demo_institution("rmyy").id


@pytest.mark.parametrize("path", [
    "/i/{big}/",
    "/i/{big}/departments",
    "/i/{inst}/departments/{big}/edit",
    "/admin/regions/{big}/edit",
    "/admin/staff/{big}/edit",
    "/i/{inst}/survey/responses/{big}",
    "/i/{inst}/survey/alerts/{big}",
    "/i/{inst}/survey/templates/{big}",
    "/i/{inst}/survey/followup/{big}/slip",
    "/i/{inst}/survey/codes/{big}/qr.png",
    "/i/{inst}/survey/staff-survey/batches/{big}",
])
def test_an_id_beyond_the_database_integer_range_is_404_not_500(platform_client, rmyy_id, path):
    response = platform_client.get(path.format(big=TOO_BIG, inst=rmyy_id))

    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", [
    "/admin/institutions?q=%00",
    "/i/{inst}/departments?q=a%00b",
    "/i/{inst}/staff?q=%00",
    "/i/{inst}/audit?actor=%00",
    "/admin/audit?target_id=%00",
])
def test_a_nul_byte_in_the_url_is_400_not_500(platform_client, rmyy_id, path):
    response = platform_client.get(path.format(inst=rmyy_id))

    assert response.status_code == 400
    assert "无效字符" in response.get_data(as_text=True)


def test_a_nul_byte_in_a_staff_form_is_400_not_500(platform_client, rmyy_id):
    response = platform_client.post(f"/i/{rmyy_id}/survey/api-tokens", data={"name": "HIS\x00"})

    assert response.status_code == 400
    assert "无效字符" in response.get_data(as_text=True)


def test_a_garbled_thank_you_link_is_404_not_500(client):
    response = client.get("/thanks/abcdefghijklmnop%00qrst")

    assert response.status_code == 404


def test_the_login_page_still_answers_while_the_rate_limit_store_is_down(make_app, database_url):
    # Rate-limit counters live in Redis; an outage must not turn logins into 500s.
    app = make_app(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0", LOGIN_RATE_LIMIT="20 per minute")

    response = app.test_client().post("/login", data={"username": "nobody-here", "password": "wrong-password"})

    assert response.status_code == 401


def test_messages_translate_in_jobs_and_commands_outside_any_request(app):
    # RQ jobs and CLI commands run in an app context only; a translated message there must not crash
    # (e.g. an inbox row whose answers fail validation would otherwise stop the whole batch).
    from flask_babel import gettext

    with app.app_context():
        assert gettext("请求无效") == "请求无效"


# Found by tests/test_public_fuzz.py -------------------------------------------------------------

UNNAMED_PART = (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
                b"--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nrmyy-nurse\r\n--b--\r\n")


@pytest.mark.parametrize("path", ["/login", "/c/lookup"])
def test_a_multipart_part_without_a_name_is_ignored_not_a_500(app, client, monkeypatch, path):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)  # the CSRF check read the unnamed part too
    response = client.post(path, data=UNNAMED_PART, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 400
    assert "请" in response.get_data(as_text=True) or "页面已过期" in response.get_data(as_text=True)


def test_a_file_posted_under_a_text_fields_name_is_a_form_error_not_a_500(client):
    import io

    response = client.post("/c/lookup", data={"case_number": (io.BytesIO(b"TS2026-00001"), "n.txt"), "code": "1"},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert "案件编号" in response.get_data(as_text=True)


def test_a_json_body_is_not_read_as_a_form(app, client, rmyy_id):
    response = client.post(f"/c/{rmyy_id}/new", json={"submission_id": 12345, "description": [1, {"a": None}]})
    assert response.status_code == 400


def test_every_form_is_built_on_core_forms():
    """core.forms.FlaskForm keeps files out of text fields and JSON out of forms; Flask-WTF's own does not."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [str(path.relative_to(root)) for package in ("core", "organisation", "survey", "complaints")
                 for path in (root / package).rglob("*.py")
                 if path.name != "forms.py" or path.parent.name != "core"
                 if "from flask_wtf import FlaskForm" in path.read_text(encoding="utf-8")
                 or "flask_wtf.FlaskForm" in path.read_text(encoding="utf-8")]
    assert not offenders, f"import FlaskForm from core.forms, not flask_wtf: {offenders}"
