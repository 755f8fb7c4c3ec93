"""Service recovery: acknowledging and closing alerts raised by ratings."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from core.audit import record
from core.db import utcnow
from survey.models import AlertStatus, RecoveryAlert


class AlertError(ValueError):
    """An alert cannot move that way; the message is for the user."""


REASON_LABELS = {
    "low_score": _l("评分低于预警线"),
    "contact_requested": _l("患者希望被联系"),
}


def reason_label(reason: str) -> str:
    if reason.startswith("flagged_answer:"):
        return gettext("敏感回答：%(code)s", code=reason.split(":", 1)[1])
    return str(REASON_LABELS.get(reason, reason))


def acknowledge_alert(alert: RecoveryAlert, *, actor: Any) -> RecoveryAlert:
    """Someone in the department has seen the alert and is acting on it."""
    if alert.status != AlertStatus.OPEN:
        raise AlertError(gettext("该提醒已被确认或关闭。"))
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by_id = actor.id
    record(actor, "survey_alert.acknowledge", alert)
    return alert


def close_alert(alert: RecoveryAlert, note: str, *, actor: Any) -> RecoveryAlert:
    """Close an alert with a note saying what was done; the note is required."""
    note = (note or "").strip()
    if not note:
        raise AlertError(gettext("请填写处理说明。"))
    if alert.status == AlertStatus.CLOSED:
        raise AlertError(gettext("该提醒已关闭。"))
    if alert.status == AlertStatus.OPEN:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by_id = actor.id
    alert.status = AlertStatus.CLOSED
    alert.closed_at = utcnow()
    alert.closed_by_id = actor.id
    alert.note = note[:2000]
    record(actor, "survey_alert.close", alert, {"note_length": len(alert.note)})
    return alert
