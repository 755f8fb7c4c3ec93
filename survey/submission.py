"""Storing a response: once, committed before "received", flagged rather than rejected.

Anti-abuse flags (never a refusal, never a CAPTCHA): a form token that is
missing, forged or stale; a fill time under the minimum; the same device
rating the same touchpoint again within the window; a burst from one network.
Flagged rows are kept and excluded from scores by default.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import exists, func, literal, literal_column, select, tuple_, union_all
from sqlalchemy.exc import IntegrityError

from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.phone import InvalidPhone, normalise_phone
from core.public import valid_submission_id
from core.services import ServiceError
from organisation.models import Touchpoint
from survey import alerts, definitions
from survey.models import (
    Channel,
    ContactRequest,
    EffectiveSettings,
    RecoveryAlert,
    SurveyAnswer,
    SurveyResponse,
    SurveySettings,
    TemplateVersion,
)

IP_BURST_LIMIT = 30          # responses per touchpoint from one /24 within IP_BURST_MINUTES
IP_BURST_MINUTES = 10
FORM_TOKEN_MAX_AGE = 6 * 3600


class SubmissionError(ServiceError):
    """The submission cannot be stored as sent (400); the message (and item code) go back to the form.

    ``item_code`` is the questionnaire item at fault ("contact_phone" for the phone box); ``field`` is
    its form field (``q_<code>``, as parse_answers reads it).
    """

    def __init__(self, message: str, item_code: str | None = None):
        field = item_code if item_code in (None, "contact_phone") else f"q_{item_code}"
        super().__init__(message, field)
        self.item_code = item_code


@dataclass
class Context:
    """Where and how a response was given.

    Pass ORM objects (``version``, ``touchpoint``) or, on the hot path, their
    ids and the version's definition; __post_init__ fills one from the other.
    """

    institution_id: int
    channel: Channel
    version: TemplateVersion | None = None
    touchpoint: Touchpoint | None = None
    department_id: int | None = None
    code_id: int | None = None
    interviewer_id: int | None = None
    form_problem: str | None = None      # from tokens.read_form_token
    fill_seconds: float | None = None
    device_hash: str = ""
    ip_hash: str = ""
    extra_flags: list[str] = field(default_factory=list)
    version_id: int | None = None
    definition: dict[str, Any] | None = None
    touchpoint_id: int | None = None
    settings: EffectiveSettings | None = None

    def __post_init__(self) -> None:
        if self.version is not None:
            self.version_id = self.version.id
            self.definition = self.version.definition
        if self.touchpoint is not None:
            self.touchpoint_id = self.touchpoint.id
            self.department_id = self.department_id or self.touchpoint.department_id
        if self.version_id is None or self.definition is None:
            raise ValueError("a Context needs a template version")


def settings_for(institution_id: int) -> SurveySettings:
    settings = db.session.get(SurveySettings, institution_id)
    if settings is None:
        settings = SurveySettings(institution_id=institution_id)
        db.session.add(settings)
        db.session.flush()
    return settings


def find_by_submission_id(submission_id: str) -> SurveyResponse | None:
    return db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == submission_id))


def check_submission(definition: dict[str, Any], submission_id: str, get: Callable[[str], Any],
                     getlist: Callable[[str], list]) -> tuple[list[definitions.ParsedAnswer], str | None]:
    """Validate a submission's id and answers; returns the answers and the contact phone
    ('' when contact was asked for without a number, None when not asked).

    Raises SubmissionError for answers that cannot be stored (unknown options,
    missing required answers, a malformed phone), so the form can say what to fix.
    """
    if not valid_submission_id(submission_id):
        raise SubmissionError(gettext("提交编号无效，请刷新页面后重试。"))
    try:
        answers = definitions.parse_answers(definition, get, getlist)
    except definitions.AnswerError as exc:
        raise SubmissionError(str(exc), exc.code) from None
    return answers, _contact_phone(definition, answers, get)


@dataclass(frozen=True)
class Stored:
    """What submit_response did: the response, whether this call stored it, and the alert it raised.

    ``alert_id`` is for the caller to notify after its commit (``patient.after_commit``).
    """

    response: SurveyResponse
    created: bool
    alert_id: int | None = None


@dataclass(frozen=True)
class Prepared:
    """A submission checked and scored, before anything is written: what every way of storing it shares."""

    answers: list[definitions.ParsedAnswer]
    contact_phone: str | None
    overall_score: float | None
    comment: str
    flags: list[str]               # the flags read from the form alone (token, fill time)
    alert_reasons: list[str]


def prepare(context: Context, settings: EffectiveSettings, submission_id: str, get: Callable[[str], Any],
            getlist: Callable[[str], list]) -> Prepared:
    """Check, score and flag one submission without touching the database; raises SubmissionError."""
    definition = context.definition
    assert definition is not None  # Context.__post_init__ refuses a context without its version's definition
    answers, contact_phone = check_submission(definition, submission_id, get, getlist)
    by_code = {a.code: a for a in answers}
    reasons: list[str] = []
    if context.channel != Channel.STAFF_TOKEN:
        # Staff answers are anonymous: no alert may point a department at one of them.
        reasons = alerts.alert_reasons(definition, by_code, settings, contact_requested=contact_phone is not None)
    return Prepared(answers=answers, contact_phone=contact_phone,
                    overall_score=definitions.overall_score(definition, answers),
                    comment=_comment(definition, by_code), flags=form_flags(context, settings),
                    alert_reasons=reasons)


def submit_response(context: Context, submission_id: str, get: Callable[[str], Any],
                    getlist: Callable[[str], list], *, actor: Any = "patient",
                    received_at: datetime | None = None) -> Stored:
    """Store one response for ``submission_id``; a repeat returns the stored one, not created.

    ``received_at`` is when the patient sent it (for rows taken from the inbox);
    flags and the stored time use it. Raises SubmissionError as check_submission does.
    """
    if context.channel == Channel.PHONE_FOLLOWUP and context.interviewer_id is None:
        # Modes score differently: a phone answer is only usable with its interviewer.
        raise SubmissionError(gettext("电话回访的回答必须记录回访人员。"))
    settings = context.settings or EffectiveSettings.of(db.session.get(SurveySettings, context.institution_id))
    prepared = prepare(context, settings, submission_id, get, getlist)
    now = received_at or utcnow()
    flags = sorted(set(prepared.flags) | set(_history_flags(context, settings, now)))
    response = SurveyResponse(
        institution_id=context.institution_id,
        submission_id=submission_id,
        template_version_id=context.version_id,
        channel=context.channel.value,
        department_id=context.department_id,
        touchpoint_id=context.touchpoint_id,
        code_id=context.code_id,
        interviewer_id=context.interviewer_id,
        submitted_at=now,
        fill_seconds=context.fill_seconds,
        overall_score=prepared.overall_score,
        comment=prepared.comment,
        device_hash=context.device_hash,
        ip_hash=context.ip_hash,
        flags=flags,
        excluded=bool(flags),
        answers=[SurveyAnswer(item_code=a.code, value=a.value, score=a.score, not_applicable=a.not_applicable)
                 for a in prepared.answers],
    )
    # The unique submission id decides: a retry or double tap loses the insert
    # and gets the stored response back. The savepoint keeps the caller's other
    # work (e.g. a recorded call) when that happens.
    try:
        with db.session.begin_nested():
            db.session.add(response)
            db.session.flush()
    except IntegrityError:
        existing = find_by_submission_id(submission_id)
        if existing is None:
            raise
        return Stored(existing, False)
    alert = open_alert(response, prepared.alert_reasons)
    if alert is not None and prepared.contact_phone is not None:
        # A callback request goes with the alert that asks someone to call: none without one.
        db.session.add(ContactRequest(institution_id=context.institution_id, response_id=response.id,
                                      phone=prepared.contact_phone or None))
    if context.interviewer_id is not None:
        record(actor, "survey_response.record_phone", response, {"channel": response.channel})
    return Stored(response, True, alert.id if alert is not None else None)


def _contact_phone(definition, answers, get) -> str | None:
    """'' when contact was asked for without a number, the number when given, None when not asked."""
    if not definitions.asks_for_contact(definition, answers):
        return None
    try:
        return normalise_phone(get("contact_phone")) or ""
    except InvalidPhone as exc:
        raise SubmissionError(str(exc), "contact_phone") from None


def _comment(definition, by_code) -> str:
    texts = [str(by_code[i["code"]].value) for i in definition["items"]
             if i["type"] == definitions.TEXT and i["code"] in by_code]
    return "\n".join(texts)


def form_flags(context: Context, settings: EffectiveSettings) -> list[str]:
    """The flags the submission itself shows: its form token and its fill time."""
    flags = list(context.extra_flags)
    if context.form_problem:
        flags.append(context.form_problem)
    if context.fill_seconds is not None and context.fill_seconds < settings.min_fill_seconds:
        flags.append("too_fast")
    return sorted(set(flags))


def _history_flags(context: Context, settings: EffectiveSettings, now: datetime) -> list[str]:
    """repeat_device and ip_burst for one QR rating, from the responses stored so far."""
    flags = []
    if context.channel == Channel.TOUCHPOINT_QR and context.touchpoint_id is not None:
        # One query answers both questions: has this device rated this
        # touchpoint within the repeat window, and did this network send at
        # least IP_BURST_LIMIT ratings in the burst window? Both stop at what
        # they need (the first repeat, the limit), so a touchpoint flooded with
        # ratings does not make each one slower to process.
        device_since = now - timedelta(minutes=settings.repeat_window_minutes)
        burst_since = now - timedelta(minutes=IP_BURST_MINUTES)
        at_touchpoint = SurveyResponse.touchpoint_id == context.touchpoint_id
        same_device = (exists().where(at_touchpoint, SurveyResponse.device_hash == context.device_hash,
                                      SurveyResponse.submitted_at >= device_since)
                       if context.device_hash else literal(False))
        same_network = (select(literal(1)).where(at_touchpoint, SurveyResponse.ip_hash == context.ip_hash,
                                                 SurveyResponse.submitted_at >= burst_since)
                        .limit(IP_BURST_LIMIT).subquery())
        burst_count = (select(func.count()).select_from(same_network).scalar_subquery()
                       if context.ip_hash else literal(0))
        repeats, burst = db.session.execute(select(same_device, burst_count)).one()
        if repeats:
            flags.append("repeat_device")
        if burst >= IP_BURST_LIMIT:
            flags.append("ip_burst")
    return flags


@dataclass(frozen=True)
class FlagInput:
    """One QR rating about to be stored, as the repeat and burst checks see it."""

    touchpoint_id: int
    device_hash: str
    ip_hash: str
    submitted_at: datetime
    repeat_window_minutes: int


# Up to this many devices (networks) in a batch are looked up one by one, each search stopping at what it
# needs; more are read in one scan of their recent ratings (a batch from many phones: each has few).
_FEW_KEYS = 8


def history_flags(ratings: Sequence[FlagInput]) -> list[list[str]]:
    """repeat_device and ip_burst for ratings stored together, in their order, as one-by-one storing would flag them.

    Each rating counts the responses already stored and the ratings before it in
    ``ratings`` (so pass only those that will be stored). The stored part takes
    one or two queries for the whole list: per device, its newest rating at the
    touchpoint; per network, its IP_BURST_LIMIT newest. That is all either
    check can need: a repeat exists when the newest is recent enough, and the
    limit is reached when the newest IP_BURST_LIMIT are recent enough.
    """
    device_since: dict[tuple[int, str], datetime] = {}
    network_since: dict[tuple[int, str], datetime] = {}
    for r in ratings:
        if r.device_hash:
            key, since = (r.touchpoint_id, r.device_hash), r.submitted_at - timedelta(minutes=r.repeat_window_minutes)
            device_since[key] = min(since, device_since.get(key, since))
        if r.ip_hash:
            key, since = (r.touchpoint_id, r.ip_hash), r.submitted_at - timedelta(minutes=IP_BURST_MINUTES)
            network_since[key] = min(since, network_since.get(key, since))
    newest_device: dict[tuple[int, str], datetime] = {}
    network_times: dict[tuple[int, str], list[datetime]] = {key: [] for key in network_since}
    for kind, touchpoint_id, value, submitted_at in _newest_stored(device_since, network_since):
        if kind == 0:
            newest_device[(touchpoint_id, value)] = submitted_at
        else:
            network_times[(touchpoint_id, value)].append(submitted_at)
    for times in network_times.values():
        times.sort()

    result = []
    for r in ratings:
        flags = []
        if r.device_hash:
            key = (r.touchpoint_id, r.device_hash)
            newest = newest_device.get(key)
            if newest is not None and newest >= r.submitted_at - timedelta(minutes=r.repeat_window_minutes):
                flags.append("repeat_device")
            if newest is None or r.submitted_at > newest:
                newest_device[key] = r.submitted_at
        if r.ip_hash:
            times = network_times[(r.touchpoint_id, r.ip_hash)]
            recent = len(times) - bisect_left(times, r.submitted_at - timedelta(minutes=IP_BURST_MINUTES))
            if recent >= IP_BURST_LIMIT:
                flags.append("ip_burst")
            insort(times, r.submitted_at)
        result.append(flags)
    return result


def _newest_stored(device_since: dict[tuple[int, str], datetime],
                   network_since: dict[tuple[int, str], datetime]) -> list[tuple[int, int, str, datetime]]:
    """(0, touchpoint, device hash, time) of each device's newest stored rating and (1, touchpoint, network hash,
    time) of each network's IP_BURST_LIMIT newest, each since its given time (or earlier)."""
    r = SurveyResponse
    kinds = ((0, r.device_hash, device_since, 1), (1, r.ip_hash, network_since, IP_BURST_LIMIT))
    branches, scans = [], []
    for kind, column, wanted, limit in kinds:
        if not wanted:
            continue
        if len(wanted) <= _FEW_KEYS:
            # Few keys (a flood from one phone or one Wi-Fi is the worst case): an index search per key that
            # stops at the newest rating or the burst limit, however many ratings the touchpoint received.
            for (touchpoint_id, value), since in wanted.items():
                newest = (select(literal_column(str(kind)).label("kind"), r.touchpoint_id, column.label("value"),
                                 r.submitted_at)
                          .where(r.touchpoint_id == touchpoint_id, column == value, r.submitted_at >= since)
                          .order_by(r.submitted_at.desc()).limit(limit).subquery())
                branches.append(select(newest))  # a subquery: SQLite allows no LIMIT in a bare UNION member
            continue
        # Many keys (a batch from many phones): one scan of their ratings since the earliest time needed,
        # numbered newest first per key.
        ranked = (select(r.touchpoint_id, column.label("value"), r.submitted_at,
                         func.row_number().over(partition_by=(r.touchpoint_id, column),
                                                order_by=r.submitted_at.desc()).label("n"))
                  .where(tuple_(r.touchpoint_id, column).in_(list(wanted)), r.submitted_at >= min(wanted.values()))
                  .subquery())
        scans.append(select(literal_column(str(kind)).label("kind"), ranked.c.touchpoint_id, ranked.c.value,
                            ranked.c.submitted_at).where(ranked.c.n <= limit))
    statements = [union_all(*branches) if len(branches) > 1 else branches[0]] if branches else []
    rows: list[tuple[int, int, str, datetime]] = []
    for statement in statements + scans:
        rows.extend(tuple(row) for row in db.session.execute(statement))
    return rows


def open_alert(response: SurveyResponse, reasons: list[str]) -> RecoveryAlert | None:
    """Open a service-recovery alert for the response's department when there are reasons to, the response is
    not excluded and its device has no alert open at the touchpoint that day (survey.alerts' rules)."""
    if not alerts.raises_alert(reasons, excluded=bool(response.excluded)):
        return None
    candidate = alerts.AlertCandidate(response.touchpoint_id, response.device_hash or "", response.submitted_at)
    if alerts.repeats([candidate])[0]:
        return None
    alert = RecoveryAlert(institution_id=response.institution_id, response_id=response.id,
                          department_id=response.department_id, touchpoint_id=response.touchpoint_id,
                          reasons=reasons)
    db.session.add(alert)
    db.session.flush()
    record("survey", "survey_alert.raise", alert, {"reasons": reasons, "response_id": response.id})
    return alert


def raise_alert_if_needed(response: SurveyResponse, definition, by_code,
                          settings: EffectiveSettings | SurveySettings, *, contact_requested: bool
                          ) -> RecoveryAlert | None:
    """Open a service-recovery alert for the department when the rules say so."""
    return open_alert(response, alerts.alert_reasons(definition, by_code, settings,
                                                     contact_requested=contact_requested))
