"""JSON API for hospital systems: push discharges with a bearer token.

Tokens are issued per institution by a survey manager, shown once, stored as
their SHA-256 only, expire when chosen at issue (a year by default), and can be
revoked. Every answer is JSON with Chinese messages; bad input is a 400 naming
each bad item and field, never a 500.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.audit import record
from core.clock import local_date, local_today
from core.db import utcnow
from core.extensions import db
from core.ratelimit import client_address, limited
from core.services import clean_text
from organisation.models import Institution, StaffUser
from survey import discharges, followup
from survey.models import ApiToken

bp = Blueprint("api", __name__, url_prefix="/api/v1")

TOKEN_PREFIX = "tj_"
SCOPE_DISCHARGES = "discharges:write"
SCOPES = (SCOPE_DISCHARGES,)
SCOPE_LABELS = {SCOPE_DISCHARGES: _l("推送出院名单")}
MAX_ITEMS = 1000
TOKEN_NAME_LIMIT = 80
DEFAULT_VALID_DAYS = 365
MAX_VALID_DAYS = 3 * 365
# JSON field -> the upload's column key; "ward" and "department" both name the unit.
FIELDS = {"ward": "unit", "department": "unit", "unit": "unit", "discharge_date": "discharge_date",
          "patient_name": "patient_name", "phone": "phone", "ref": "ref"}
FIELD_OF_KEY = {"unit": "ward", "discharge_date": "discharge_date", "patient_name": "patient_name",
                "phone": "phone", "ref": "ref"}


# Tokens ------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(institution: Institution, *, name: str, scopes: list[str] | None = None,
                     valid_days: int | None = DEFAULT_VALID_DAYS, actor: StaffUser) -> tuple[ApiToken, str]:
    """Issue a bearer token for the institution, valid ``valid_days`` from now (None: no expiry); the clear
    token is returned once and never stored."""
    name = clean_text(name, field="name", label=gettext("令牌名称"), limit=TOKEN_NAME_LIMIT,
                      required=gettext("请填写令牌名称。"), error=followup.FollowupError)
    scopes = list(scopes or [SCOPE_DISCHARGES])
    if any(scope not in SCOPES for scope in scopes):
        raise followup.FollowupError(gettext("未知的令牌权限。"))
    if valid_days is not None and not 1 <= valid_days <= MAX_VALID_DAYS:
        raise followup.FollowupError(gettext("有效期须在 1 到 %(n)d 天之间。", n=MAX_VALID_DAYS), "valid_days")
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(institution_id=institution.id, name=name, prefix=clear[:10], token_hash=hash_token(clear),
                     scopes=scopes, created_by_id=actor.id, created_at=now,
                     expires_at=now + timedelta(days=valid_days) if valid_days is not None else None)
    db.session.add(token)
    db.session.flush()
    record(actor, "api_token.create", token,
           {"scopes": scopes, "expires_at": token.expires_at.isoformat() if token.expires_at else None})
    return token, clear


def revoke_api_token(token: ApiToken, *, actor: StaffUser) -> ApiToken:
    """Revoke a token; it is refused from the next request on (revoking twice changes nothing)."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record(actor, "api_token.revoke", token)
    return token


def authenticate(header: str | None, scope: str, *, now: datetime | None = None) -> tuple[ApiToken | None, int]:
    """The live token named by an Authorization header and its HTTP status (200, 401 or 403). A 401 comes
    with no token, except for a real token past its expiry, so that the caller can say when it expired."""
    kind, _, value = (header or "").partition(" ")
    value = value.strip()
    if kind.lower() != "bearer" or not value.startswith(TOKEN_PREFIX) or len(value) > 200:
        return None, 401
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(value)))
    if token is None or token.revoked_at is not None:
        return None, 401
    if token.expired(now or utcnow()):
        return token, 401
    institution = db.session.get(Institution, token.institution_id)
    if institution is None or not institution.active:
        return None, 401
    if scope not in (token.scopes or []):
        return token, 403
    return token, 200


def error(status: int, message: str, **extra: Any):
    code = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 413: "too_large"}.get(status, "error")
    response = jsonify(error=code, message=message, **extra)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="tingjian"'
    return response


def require_token(scope: str):
    token, status = authenticate(request.headers.get("Authorization"), scope)
    if status == 401 and token is not None and token.expires_at is not None:
        message = gettext("该访问令牌已于 %(day)s 过期。请医院管理员在“接口令牌”页面生成新令牌，并更新调用方的配置。",
                          day=local_date(token.expires_at).isoformat())
        expired = error(401, message, reason="token_expired")
        # RFC 6750 section 3: a client library can tell an expired token from a wrong one.
        expired.headers["WWW-Authenticate"] = ('Bearer realm="tingjian", error="invalid_token", '
                                               'error_description="The access token expired"')
        return expired
    if status == 401:
        return error(401, gettext("缺少或无效的访问令牌。请在请求头中提供 Authorization: Bearer <令牌>。"))
    if status == 403:
        return error(403, gettext("该令牌没有此操作的权限。"))
    token.last_used_at = utcnow()
    g.api_token = token
    return None


# Discharges --------------------------------------------------------------

def _text(value: Any) -> str | None:
    """A JSON scalar as text; None for objects, lists and booleans (which are refused)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _raw_item(item: Any) -> tuple[dict[str, str], list[tuple[str, str]]]:
    if not isinstance(item, dict):
        return {}, [("_item", gettext("每条记录必须是一个 JSON 对象。"))]
    raw: dict[str, str] = {}
    errors = []
    for name, value in item.items():
        key = FIELDS.get(name)
        if key is None:
            continue  # unknown fields are ignored, so that senders can add their own
        text = _text(value)
        if text is None:
            errors.append((name, gettext("应为文本。")))
        elif "\x00" in text:  # PostgreSQL refuses NUL in text
            errors.append((name, gettext("含有无效字符。")))
        elif text.strip():
            raw[key] = text
    return raw, errors


@bp.post("/discharges")
@limited(("API_RATE_LIMIT", client_address))
def post_discharges():
    refused = require_token(SCOPE_DISCHARGES)
    if refused is not None:
        return refused
    token: ApiToken = g.api_token
    try:
        payload = request.get_json(silent=True, force=True)
    except RecursionError:  # absurdly nested JSON is not a ValueError, so silent= does not cover it
        payload = None
    if payload is None:
        db.session.commit()  # the token's last_used_at
        return error(400, gettext("请求体不是有效的 JSON。"))
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        db.session.commit()
        return error(400, gettext("请至少提交一条出院记录。"))
    if len(items) > MAX_ITEMS:
        db.session.commit()
        return error(400, gettext("一次最多提交 %(n)d 条记录。", n=MAX_ITEMS))
    institution = db.session.get(Institution, token.institution_id)
    units = discharges.Units.load(institution)
    settings = followup.followup_settings(institution.id)
    today: date = local_today()
    errors: list[dict[str, Any]] = []
    valid: list[tuple[int, discharges.DischargeInput]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        raw, item_errors = _raw_item(item)
        if not item_errors:
            data, problems = discharges.check_discharge(raw, units, settings, today=today)
            item_errors = [(FIELD_OF_KEY[key], message) for key, message in problems]
            ref = raw.get("ref", "").strip()
            if ref and ref in seen:
                item_errors.append(("ref", gettext("与第 %(n)d 条记录的住院号重复。", n=seen[ref] + 1)))
            seen.setdefault(ref, index)
            if data is not None and not item_errors:
                valid.append((index, data))
        errors.extend({"index": index, "field": name, "message": message} for name, message in item_errors)
    if errors:
        db.session.commit()  # only the token's last_used_at
        return error(400, gettext("有 %(n)d 处错误，未保存任何记录。", n=len(errors)), errors=errors)
    results = []
    for index, data in valid:
        discharge, status = discharges.create_discharge(institution, data, source="api", actor=_actor(token),
                                                      settings=settings)
        results.append({"index": index, "id": discharge.id, "status": status,
                        "survey_url": discharges.discharge_link_url(discharge),
                        "link_expires_at": discharge.link_expires_at.isoformat()})
    db.session.commit()
    return jsonify(items=results, count=len(results)), 201


def _actor(token: ApiToken) -> str:
    """Audit entries name the token (never its secret)."""
    return f"api:{token.prefix}"
