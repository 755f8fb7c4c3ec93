"""Service recovery: what a low rating is, the alerts ratings raise, and the public alert API.

The public alert API (the end of this module) is all another feature may use of survey:
complaints reads the rating a complainant came from and turns alerts into cases through it,
and never imports survey's models or services.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, tuple_

from core.audit import record
from core.clock import local_date, local_day_bounds, local_midnight
from core.db import lock_for_transaction, utcnow
from core.extensions import db
from core.services import ServiceError, clean_text
from organisation.models import Institution
from survey import definitions, versioning
from survey.models import (
    AlertStatus,
    ContactRequest,
    EffectiveSettings,
    RecoveryAlert,
    SurveyInbox,
    SurveyResponse,
    SurveySettings,
)


class AlertError(ServiceError):
    """An alert cannot move that way (400); the message is for the user."""


NOTE_LIMIT = 2000

REASON_LABELS = {
    "low_score": _l("评分低于预警线"),
    "contact_requested": _l("患者希望被联系"),
}


def is_low_rating(score: float | None, settings: EffectiveSettings | SurveySettings) -> bool:
    """The rule: a rating is low when its overall score (0-100) is at or below the institution's alert threshold."""
    return score is not None and score <= settings.alert_threshold


def alert_reasons(definition: dict[str, Any], by_code: Mapping[str, Any], settings: EffectiveSettings | SurveySettings,
                  *, contact_requested: bool) -> list[str]:
    """Why a response needs a person: a low overall rating, an answer the template flags, a wish to be contacted."""
    reasons = []
    overall = definitions.overall_item(definition)
    if overall is not None:
        answer = by_code.get(overall["code"])
        if answer is not None and is_low_rating(answer.score, settings):
            reasons.append("low_score")
    for item in definition["items"]:
        answer = by_code.get(item["code"])
        if answer is not None and item.get("alert_values") and str(answer.value) in item["alert_values"]:
            reasons.append(f"flagged_answer:{item['code']}")
    if contact_requested:
        reasons.append("contact_requested")
    return reasons


def raises_alert(reasons: Sequence[str], *, excluded: bool) -> bool:
    """Whether a rating with these reasons raises an alert at all: an excluded (flagged) rating never does, so
    the resubmit after Back, a tap faster than a person reads, a burst from one network call nobody out."""
    return bool(reasons) and not excluded


@dataclass(frozen=True)
class AlertCandidate:
    """A rating about to be stored that raises an alert unless its device already has one open (see repeats)."""

    touchpoint_id: int | None
    device_hash: str
    submitted_at: datetime


def repeats(candidates: Sequence[AlertCandidate]) -> list[bool]:
    """For ratings stored together, in their order, each with reasons to raise an alert: whether it repeats one.

    The rule: one device at one touchpoint raises at most one open alert per day (the hospital's calendar day
    of the rating). A rating repeats when an open alert of a rating from the same device at the same touchpoint
    on the same day is stored, or comes earlier in ``candidates``. A rating without a device (no cookie, a phone
    call) or without a touchpoint is never a repeat. One query for the whole list, none when no candidate has
    a device.
    """
    keyed = [(c.touchpoint_id, c.device_hash, local_date(c.submitted_at))
             if c.touchpoint_id is not None and c.device_hash else None for c in candidates]
    seen: set[tuple[int | None, str, date]] = set()
    wanted = {(k[0], k[1]) for k in keyed if k is not None}
    if wanted:
        # Two workers storing ratings of one device at once would each find no open alert: the second waits
        # here until the first commits, then finds its alert.
        lock_for_transaction(db.session(), "survey-alert", (f"{tp}:{device}" for tp, device in wanted))
        days = [k[2] for k in keyed if k is not None]
        r = SurveyResponse
        rows = db.session.execute(
            select(RecoveryAlert.touchpoint_id, r.device_hash, r.submitted_at)
            .join(r, r.id == RecoveryAlert.response_id)
            .where(RecoveryAlert.status == AlertStatus.OPEN, tuple_(r.touchpoint_id, r.device_hash).in_(list(wanted)),
                   r.submitted_at >= local_midnight(min(days)),
                   r.submitted_at < local_midnight(max(days) + timedelta(days=1))))
        seen = {(touchpoint_id, device, local_date(at)) for touchpoint_id, device, at in rows}
    result = []
    for key in keyed:
        result.append(key is not None and key in seen)
        if key is not None:
            seen.add(key)
    return result


def same_device_ratings(alert: RecoveryAlert) -> list[SurveyResponse]:
    """The other ratings the alert's device gave at its touchpoint on the alert's day: the repeats it stands for
    (a resubmit after Back, a second try later that day), oldest first."""
    response = alert.response
    if not response.device_hash or response.touchpoint_id is None:
        return []
    start, end = local_day_bounds(local_date(response.submitted_at))
    return list(db.session.scalars(
        select(SurveyResponse).where(SurveyResponse.touchpoint_id == response.touchpoint_id,
                                     SurveyResponse.device_hash == response.device_hash,
                                     SurveyResponse.submitted_at >= start, SurveyResponse.submitted_at < end,
                                     SurveyResponse.id != response.id)
        .order_by(SurveyResponse.submitted_at)))


def reason_label(reason: str) -> str:
    if reason.startswith("flagged_answer:"):
        return gettext("敏感回答：%(code)s", code=reason.split(":", 1)[1])
    return str(REASON_LABELS.get(reason, reason))


def alerts_statement(institution: Institution, scope: set[int] | None, status: str | None):
    """The institution's alerts (within ``scope``'s departments unless None; of one status if given), newest first."""
    stmt = select(RecoveryAlert).where(RecoveryAlert.institution_id == institution.id)
    if scope is not None:
        stmt = stmt.where(RecoveryAlert.department_id.in_(scope or {-1}))
    if status in {s.value for s in AlertStatus}:
        stmt = stmt.where(RecoveryAlert.status == status)
    return stmt.order_by(RecoveryAlert.created_at.desc())


def open_alert_count(institution: Institution, scope: set[int] | None) -> int:
    """Alerts nobody has taken up yet (待处理; an acknowledged one is being worked)."""
    return db.session.scalar(alerts_statement(institution, scope, AlertStatus.OPEN.value)
                             .with_only_columns(func.count()).order_by(None)) or 0


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
    """Close an alert with a note saying what was done; the note is required (at most NOTE_LIMIT characters)."""
    note = clean_text(note, field="note", label=gettext("处理说明"), limit=NOTE_LIMIT,
                      required=gettext("请填写处理说明。"), error=AlertError)
    if alert.status == AlertStatus.CLOSED:
        raise AlertError(gettext("该提醒已关闭。"))
    if alert.status == AlertStatus.OPEN:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by_id = actor.id
    alert.status = AlertStatus.CLOSED
    alert.closed_at = utcnow()
    alert.closed_by_id = actor.id
    alert.note = note
    record(actor, "survey_alert.close", alert, {"note_length": len(alert.note)})
    return alert


# The public alert API --------------------------------------------------------------------

@dataclass(frozen=True)
class RatingLink:
    """A stored rating a complaint may point at (the thank-you page's link to the complaint form)."""

    response_id: int
    institution_id: int
    touchpoint_id: int | None
    department_id: int | None
    low: bool
    comment: str = ""             # what the patient wrote, for the complaint form to start from


@dataclass(frozen=True)
class AlertFacts:
    """What a complaint made from an alert carries over: where, why, what the patient wrote, how to reach them."""

    id: int
    institution_id: int
    response_id: int
    touchpoint_id: int | None
    department_id: int | None
    place: str
    reasons: tuple[str, ...]
    comment: str
    contact_phone: str | None
    open: bool
    rating: RatingLink            # the rating that raised the alert; its ``low`` is response_is_low's answer

    @property
    def reason_text(self) -> str:
        return "、".join(reason_label(r) for r in self.reasons)

    @property
    def low_score(self) -> bool:
        """Whether the alert was raised for a low score (it may have been raised only for a flagged answer or a
        wish to be contacted)."""
        return "low_score" in self.reasons


def response_is_low(response: SurveyResponse) -> bool:
    """Whether a stored rating was low: it raised a low-score alert, or is low by today's threshold."""
    reasons = db.session.scalar(select(RecoveryAlert.reasons).where(RecoveryAlert.response_id == response.id))
    if reasons and "low_score" in reasons:
        return True
    return is_low_rating(response.overall_score, SurveySettings.of(response.institution_id))


def rating_for_complaint(institution_id: int, submission_id: str) -> RatingLink | None:
    """The institution's stored rating with this submission id, if there is one."""
    response = db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == submission_id,
                                                              SurveyResponse.institution_id == institution_id))
    if response is None:
        return None
    return _rating_link(response)


def _rating_link(response: SurveyResponse) -> RatingLink:
    return RatingLink(response_id=response.id, institution_id=response.institution_id,
                      touchpoint_id=response.touchpoint_id, department_id=response.department_id,
                      low=response_is_low(response), comment=(response.comment or "").strip())


@dataclass(frozen=True)
class RatingDraft:
    """What a complaint opened from a rating's thank-you page starts from: the patient's comment and the
    department of the window they rated."""

    comment: str
    department_id: int | None


def rating_draft(institution_id: int, submission_id: str) -> RatingDraft | None:
    """The institution's rating with this submission id as a complaint's starting point: the stored response, or
    the rating still waiting in the inbox (the thank-you page links to the complaint form before the job ran)."""
    link = rating_for_complaint(institution_id, submission_id)
    if link is not None:
        return RatingDraft(comment=link.comment, department_id=link.department_id)
    waiting = db.session.scalar(select(SurveyInbox).where(SurveyInbox.submission_id == submission_id))
    if waiting is None:
        return None
    try:
        meta = waiting.meta
        fields = dict(waiting.payload.get("form") or {})
    except (KeyError, TypeError, AttributeError):
        return None  # a corrupt row: the complaint form simply starts empty
    if meta.institution_id != institution_id:
        return None
    definition = versioning.published_definition(meta.version_id)
    if definition is None:
        return RatingDraft(comment="", department_id=meta.department_id)
    texts = [str(value).strip() for item in definition["items"] if item["type"] == definitions.TEXT
             for value in fields.get(f"q_{item['code']}", []) if str(value).strip()]
    return RatingDraft(comment="\n".join(texts), department_id=meta.department_id)


def alert_for_complaint(institution_id: int, alert_id: int) -> AlertFacts | None:
    """An alert of this institution, as a complaint needs it; None when there is none (or another's)."""
    alert = db.session.get(RecoveryAlert, alert_id)
    if alert is None or alert.institution_id != institution_id:
        return None
    contact = db.session.scalar(select(ContactRequest.phone).where(ContactRequest.response_id == alert.response_id))
    place = alert.touchpoint.name if alert.touchpoint is not None else (
        alert.department.name if alert.department is not None else "")
    return AlertFacts(id=alert.id, institution_id=alert.institution_id, response_id=alert.response_id,
                      touchpoint_id=alert.touchpoint_id, department_id=alert.department_id, place=place,
                      reasons=tuple(alert.reasons or ()), comment=(alert.response.comment or "").strip(),
                      contact_phone=contact or None, open=alert.status == AlertStatus.OPEN,
                      rating=_rating_link(alert.response))


def acknowledge_for_complaint(alert_id: int, *, actor: Any) -> None:
    """An officer turned the alert into a complaint: an open alert counts as acknowledged by them."""
    alert = db.session.get(RecoveryAlert, alert_id)
    if alert is not None and alert.status == AlertStatus.OPEN:
        acknowledge_alert(alert, actor=actor)
