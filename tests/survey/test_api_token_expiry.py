"""API tokens expire (issue 11, point 6): chosen at issue, a year by default, shown in the list, and an
expired token is refused with a 401 that says so."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.audit import AuditEntry, describe
from core.clock import local_date
from core.db import utcnow
from core.extensions import db
from core.i18n import format_local_datetime
from survey import followup
from survey.api import DEFAULT_VALID_DAYS, create_api_token
from survey.models import ApiToken
from tests.factories import demo_institution, demo_user
from tests.survey.conftest import staff_login


@pytest.fixture
def hospital(ctx):
    return demo_institution("rmyy")


def push(client, token: str):
    return client.post("/api/v1/discharges", data=json.dumps([]), content_type="application/json",
                       headers={"Authorization": f"Bearer {token}"})


def test_a_token_expires_a_year_after_it_is_issued_by_default(hospital):
    token, _clear = create_api_token(hospital, name="HIS", actor=demo_user("rmyy-admin"))
    assert token.expires_at - token.created_at == timedelta(days=DEFAULT_VALID_DAYS) == timedelta(days=365)


def test_the_expiry_is_chosen_at_issue_and_audited(hospital):
    admin = demo_user("rmyy-admin")
    short, _ = create_api_token(hospital, name="测试", valid_days=30, actor=admin)
    forever, _ = create_api_token(hospital, name="旧系统", valid_days=None, actor=admin)
    assert short.expires_at - short.created_at == timedelta(days=30) and forever.expires_at is None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "api_token.create",
                                                       AuditEntry.target_id == str(short.id)))
    assert entry.data["expires_at"] == short.expires_at.isoformat()
    assert ("有效期至", format_local_datetime(short.expires_at)) in describe(entry).details
    for days in (0, -1, 10_000):
        with pytest.raises(followup.FollowupError, match="有效期须在"):
            create_api_token(hospital, name="bad", valid_days=days, actor=admin)


def test_an_expired_token_is_refused_with_401_saying_it_expired(client, hospital):
    token, clear = create_api_token(hospital, name="HIS", valid_days=30, actor=demo_user("rmyy-admin"))
    db.session.commit()
    assert push(client, clear).status_code == 400  # live: past the token check, an empty list is a 400
    token.expires_at = utcnow() - timedelta(seconds=1)
    token.last_used_at = None
    db.session.commit()
    refused = push(client, clear)
    body = refused.get_json()
    assert refused.status_code == 401 and body["reason"] == "token_expired"
    assert "已于" in body["message"] and "过期" in body["message"]
    assert local_date(token.expires_at).isoformat() in body["message"]
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    db.session.refresh(token)
    assert token.last_used_at is None  # a refused call is not a use


def test_a_token_without_expiry_keeps_working(client, hospital):
    token, clear = create_api_token(hospital, name="旧系统", valid_days=None, actor=demo_user("rmyy-admin"))
    token.created_at = utcnow() - timedelta(days=5 * 365)
    db.session.commit()
    assert push(client, clear).status_code == 400


def test_a_wrong_token_still_gets_the_plain_401(client, hospital):
    refused = push(client, "tj_not-a-token")
    assert refused.status_code == 401 and "reason" not in refused.get_json()
    assert "缺少或无效的访问令牌" in refused.get_json()["message"]


def test_the_token_page_chooses_the_expiry_and_lists_it(client, hospital):
    staff_login(client, "rmyy-admin")
    url = f"/i/{hospital.id}/survey/api-tokens"
    form = client.get(url).get_data(as_text=True)
    assert "有效期" in form and re.search(r'<option (selected )?value="365"( selected)?>1 年</option>', form)
    assert re.search(r'<option [^>]*selected[^>]*>1 年</option>', form)  # a year unless chosen otherwise
    created = client.post(url, data={"name": "HIS 出院接口", "valid_days": "90"})
    assert created.status_code == 201
    token = db.session.scalar(select(ApiToken).where(ApiToken.name == "HIS 出院接口"))
    assert token.expires_at - token.created_at == timedelta(days=90)
    assert client.post(url, data={"name": "永久", "valid_days": "never"}).status_code == 201
    assert db.session.scalar(select(ApiToken).where(ApiToken.name == "永久")).expires_at is None
    bad = client.post(url, data={"name": "坏", "valid_days": "99999"})
    assert bad.status_code == 400 and db.session.scalar(select(ApiToken).where(ApiToken.name == "坏")) is None
    token.expires_at = utcnow() - timedelta(days=1)
    db.session.commit()
    listing = client.get(url).get_data(as_text=True)
    assert "有效期至" in listing and "永不过期" in listing and "已过期" in listing
