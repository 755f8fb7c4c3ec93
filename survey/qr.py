"""Touchpoint QR codes: issue, rotate, resolve, and draw them as PNG or SVG."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import select

from core import signing
from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.public import public_url
from organisation.models import Touchpoint
from survey.builtin import DEFAULT_FOR_TOUCHPOINT
from survey.models import (
    EffectiveSettings,
    SurveySettings,
    SurveyTemplate,
    TemplateVersion,
    TouchpointCode,
    VersionStatus,
)
from survey.versioning import builtin_template

PURPOSE = "touchpoint-qr"


def active_code(touchpoint: Touchpoint) -> TouchpointCode | None:
    return db.session.scalar(select(TouchpointCode).where(TouchpointCode.touchpoint_id == touchpoint.id,
                                                          TouchpointCode.retired_at.is_(None)))


def default_template(touchpoint: Touchpoint) -> SurveyTemplate:

    return builtin_template(DEFAULT_FOR_TOUCHPOINT.get(touchpoint.kind, "WIN"))


def ensure_code(touchpoint: Touchpoint, *, actor: Any, template: SurveyTemplate | None = None) -> TouchpointCode:
    """The touchpoint's live QR code, issued on first use."""
    code = active_code(touchpoint)
    if code is not None:
        return code
    return _issue(touchpoint, template or default_template(touchpoint), actor=actor, action="survey_code.issue")


def _issue(touchpoint: Touchpoint, template: SurveyTemplate, *, actor: Any, action: str) -> TouchpointCode:
    while True:
        value = signing.new_code()
        if db.session.scalar(select(TouchpointCode.id).where(TouchpointCode.code == value)) is None:
            break
    code = TouchpointCode(institution_id=touchpoint.institution_id, touchpoint_id=touchpoint.id,
                          template_id=template.id, code=value)
    db.session.add(code)
    db.session.flush()
    record(actor, action, code, {"touchpoint_id": touchpoint.id, "template_id": template.id})
    return code


def rotate_code(touchpoint: Touchpoint, *, actor: Any, template: SurveyTemplate | None = None) -> TouchpointCode:
    """Retire the live code (it stops working, history stays linked) and issue a new one."""
    old = active_code(touchpoint)
    if old is not None:
        forget(old.code)
        old.retired_at = utcnow()
        record(actor, "survey_code.retire", old)
        db.session.flush()
    return _issue(touchpoint, template or (old.template if old else default_template(touchpoint)),
                  actor=actor, action="survey_code.rotate")


def set_template(code: TouchpointCode, template: SurveyTemplate, *, actor: Any) -> TouchpointCode:
    """Point a touchpoint's code at another template; the printed QR stays valid."""
    if code.template_id != template.id:
        forget(code.code)
        record(actor, "survey_code.set_template", code, {"from": code.template_id, "to": template.id})
        code.template_id = template.id
    return code


def path_token(code: TouchpointCode) -> str:
    return f"{code.code}-{signing.signature(PURPOSE, code.code, 6)}"


def patient_url(code: TouchpointCode) -> str:
    """The absolute address a touchpoint's QR code opens."""
    return public_url("patient.touchpoint_survey", token=path_token(code))


def resolve(token: str) -> tuple[TouchpointCode | None, str | None]:
    """Find the code a scanned URL names; problem is 'unknown' or 'retired' when it can't be used."""
    value, _, sig = (token or "").partition("-")
    if not value or not signing.verify(PURPOSE, value, sig, 6):
        return None, "unknown"
    code = db.session.scalar(select(TouchpointCode).where(TouchpointCode.code == value))
    if code is None:
        return None, "unknown"
    if code.retired_at is not None:
        return code, "retired"
    if not code.touchpoint.active:
        return code, "inactive"
    return code, None


@dataclass(frozen=True)
class CodeInfo:
    """What the patient page needs about a scanned code, read in one query."""

    code_id: int
    institution_id: int
    touchpoint_id: int
    department_id: int
    touchpoint_name: str
    touchpoint_active: bool
    retired: bool
    version_id: int | None
    settings: EffectiveSettings


_LOOKUPS: dict[str, tuple[float, CodeInfo | None, str | None]] = {}


def forget(value: str | None = None) -> None:
    """Drop cached look-ups (one code, or all) in this process."""
    if value is None:
        _LOOKUPS.clear()
    else:
        _LOOKUPS.pop(value, None)


def lookup(token: str) -> tuple[CodeInfo | None, str | None]:
    """Like resolve(), but one round trip: code, touchpoint, live version and settings together.

    Results are kept for SURVEY_CODE_CACHE_SECONDS (a few seconds) per process,
    so a busy window costs no query per scan; a rotation or a new version is
    seen by every process within that time.
    """
    value, _, sig = (token or "").partition("-")
    if not value or not signing.verify(PURPOSE, value, sig, 6):
        return None, "unknown"
    ttl = current_app.config["SURVEY_CODE_CACHE_SECONDS"]
    now = time.monotonic()
    cached = _LOOKUPS.get(value)
    if cached is not None and now - cached[0] < ttl:
        return cached[1], cached[2]
    info, problem = _lookup(value)
    if ttl > 0:
        if len(_LOOKUPS) > 10000:
            _LOOKUPS.clear()
        _LOOKUPS[value] = (now, info, problem)
    return info, problem


def _lookup(value: str) -> tuple[CodeInfo | None, str | None]:
    live_version = (select(TemplateVersion.id)
                    .where(TemplateVersion.template_id == TouchpointCode.template_id,
                           TemplateVersion.status == VersionStatus.PUBLISHED)
                    .order_by(TemplateVersion.number.desc()).limit(1).scalar_subquery())
    row = db.session.execute(
        select(TouchpointCode.id, TouchpointCode.institution_id, Touchpoint.id, Touchpoint.department_id,
               Touchpoint.name, Touchpoint.active, TouchpointCode.retired_at, live_version,
               SurveySettings.alert_threshold, SurveySettings.min_fill_seconds,
               SurveySettings.repeat_window_minutes)
        .join(Touchpoint, Touchpoint.id == TouchpointCode.touchpoint_id)
        .outerjoin(SurveySettings, SurveySettings.institution_id == TouchpointCode.institution_id)
        .where(TouchpointCode.code == value)).first()
    if row is None:
        return None, "unknown"
    settings = EffectiveSettings() if row[8] is None else EffectiveSettings(row[8], row[9], row[10])
    info = CodeInfo(row[0], row[1], row[2], row[3], row[4], row[5], row[6] is not None, row[7], settings)
    if info.retired:
        return info, "retired"
    if not info.touchpoint_active:
        return info, "inactive"
    return info, None


def qr_image(url: str, *, kind: str = "png", box_size: int = 10, border: int = 4) -> bytes:
    """The URL as a QR code (error correction M: survives a scuffed poster)."""
    import qrcode
    import qrcode.image.svg

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=border)
    qr.add_data(url)
    qr.make(fit=True)
    buffer = io.BytesIO()
    if kind == "svg":
        qr.make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    else:
        qr.make_image().save(buffer, format="PNG")
    return buffer.getvalue()
