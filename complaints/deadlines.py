"""Working-day deadlines: China's official calendar and the Civil Code's way of counting.

The action plan asks hospitals to fix what complaints reveal "限时整改落实，结果及时
回应当事人和社会公众" (seed 000, II.11). Complaints are answered "于接到投诉之日起5个
工作日内" (10 when several departments must be coordinated; 医疗机构投诉管理办法),
and periods are counted as 民法典 第二百零一条 says: "开始的当日不计入，自下一日开始
计算". So the day of receipt never counts, and the deadline is the end (24:00
Beijing time) of the N-th working day after it; a complaint received on a
Saturday or a holiday is due on the N-th working day after that day too. (chinesecalendar's ``find_workday`` snaps a
non-working start day forward first and is therefore 1-4 days late: check C3.)

Working days follow the official calendar (complaints.workdays); a deadline that counts a
day of a year not yet announced is marked provisional.

The clock starts at receipt, not at acceptance: a case gets its deadline when it is registered
(start_clock) and is overdue once it passes, triaged or not (Status.to_do()); triage has its own
target (ComplaintSettings.triage_days: triage_late). Declined and settled cases owe no answer.

Paused periods (待补充材料, 调解, 鉴定) are excluded, the way 医疗纠纷预防和处理条例
第四十条 excludes 鉴定 time from the mediation period: a working day that lies
entirely inside a pause (from its 00:00 to the next 00:00, Beijing time) is not
counted; a day on which the clock ran for any part of the day counts. A pause
still open is taken to end ``now``: the deadline shown while a case waits is the
one it would have if the clock restarted at once, and the trace says so.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import and_, func, select
from sqlalchemy.orm.exc import StaleDataError

from complaints.models import (
    CasePause,
    CaseRole,
    Complaint,
    DeadlineRule,
    Extension,
    ExtensionStatus,
    Status,
)
from complaints.settings import complaint_settings
from complaints.workdays import (
    MAX_SPAN_DAYS,
    add_working_days,
    invalidate_calendar_cache,
    work_calendar,
    working_days_between,
)
from complaints.workflow import log_event
from core.audit import record
from core.clock import local_date, local_day_bounds, local_today
from core.db import utcnow
from core.extensions import db

# A day inside a pause, in a deadline's trace (the other kinds are the calendar's).
PAUSED = "paused"

CO_HANDLER_LEAD = 2  # working days a co-handler's answer is due before the lead's reply

# Deadlines ------------------------------------------------------------------------

@dataclass
class Deadline:
    """A computed deadline and how it was reached (kept with the case as deadline_trace)."""

    due_date: date
    due_at: datetime                 # UTC; the end of the due day in Beijing (the next local midnight)
    working_days: int
    rule: str
    provisional: bool
    calendar_versions: dict[str, int]
    trace: list[dict[str, Any]]
    extra_days: int = 0
    received_at: datetime | None = None
    pauses: list[dict[str, Any]] = field(default_factory=list)
    open_pause: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "civil_code_201",
            "rule": self.rule,
            "working_days": self.working_days,
            "extra_days": self.extra_days,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "due_date": self.due_date.isoformat(),
            "due_at": self.due_at.isoformat(),
            "provisional": self.provisional,
            "calendar_versions": dict(self.calendar_versions),
            "pauses": list(self.pauses),
            "open_pause": self.open_pause,
            "days": list(self.trace),
        }


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value


def compute_deadline(received_at: datetime, working_days: int, *, rule: str,
                     pauses: Sequence[tuple[datetime, datetime | None]] = (), extra_days: int = 0,
                     now: datetime | None = None) -> Deadline:
    """The end of the (working_days + extra_days)-th working day after the day of receipt, pauses excluded.

    Counting (民法典 第二百零一条): the Beijing-time day of ``received_at`` is
    not counted; each following day that is a working day counts unless it lies
    entirely inside one of ``pauses`` ([start, end), aware datetimes; an end of
    None means the pause is still open and is taken to end at ``now``, which
    defaults to the current time). ``extra_days`` are approved extensions and
    are counted after the ``working_days``. The deadline is 24:00 Beijing time
    of the last counted day. ``trace`` has one entry per day from the day of
    receipt to the due day: date, kind (working / weekend / holiday /
    makeup_workday / paused), name, whether it counted and the running count,
    and flags for provisional days, days inside a pause and extension days.
    """
    _aware(received_at, "received_at")
    if working_days < 0 or extra_days < 0:
        raise ValueError("working_days and extra_days must not be negative")
    now = _aware(now, "now") if now is not None else utcnow()
    windows: list[tuple[datetime, datetime]] = []
    pause_json: list[dict[str, Any]] = []
    open_pause = False
    for start, end in pauses:
        _aware(start, "pause start")
        if end is None:
            open_pause = True
            end_eff = max(now, start)
        else:
            end_eff = _aware(end, "pause end")
            if end_eff < start:
                raise ValueError("a pause cannot end before it starts")
        windows.append((start, end_eff))
        pause_json.append({"start": start.isoformat(), "end": end.isoformat() if end else None,
                           **({"assumed_end": end_eff.isoformat()} if end is None else {})})

    calendar = work_calendar()
    receipt_day = local_date(received_at)
    total = working_days + extra_days
    receipt = calendar.info(receipt_day)
    trace: list[dict[str, Any]] = [{"date": receipt_day.isoformat(), "kind": receipt.kind, "name": receipt.name,
                                    "counted": False, "n": 0, "receipt": True,
                                    "provisional": receipt.provisional}]
    versions: dict[str, int] = {}
    provisional = False
    day, counted = receipt_day, 0
    if total == 0:
        versions[str(receipt_day.year)] = calendar.version(receipt_day.year)
        provisional = receipt.provisional
    while counted < total:
        day += timedelta(days=1)
        if (day - receipt_day).days > MAX_SPAN_DAYS:
            raise ValueError("the pauses leave no working day to count")
        info = calendar.info(day)
        versions[str(day.year)] = calendar.version(day.year)
        provisional |= info.provisional
        start, end = local_day_bounds(day)
        paused = any(p_start <= start and end <= p_end for p_start, p_end in windows)
        entry: dict[str, Any] = {"date": day.isoformat(), "kind": info.kind, "name": info.name,
                                 "counted": False, "n": counted, "provisional": info.provisional}
        if paused:
            entry["paused"] = True
            if info.working:
                entry["kind"] = PAUSED
        elif info.working:
            counted += 1
            entry.update(counted=True, n=counted)
            if counted > working_days:
                entry["extension"] = True
        trace.append(entry)
    due_at = local_day_bounds(day)[1].astimezone(UTC)  # 24:00 of the due day
    return Deadline(due_date=day, due_at=due_at, working_days=working_days, rule=rule, provisional=provisional,
                    calendar_versions=versions, trace=trace, extra_days=extra_days,
                    received_at=received_at.astimezone(UTC), pauses=pause_json, open_pause=open_pause)


# Cases ----------------------------------------------------------------------------

def case_pauses(complaint_ids: Iterable[int]) -> dict[int, list[tuple[datetime, datetime | None]]]:
    """The pauses of each case, oldest first."""
    ids = list(complaint_ids)
    result: dict[int, list[tuple[datetime, datetime | None]]] = {i: [] for i in ids}
    if ids:
        for p in db.session.scalars(select(CasePause).where(CasePause.complaint_id.in_(ids))
                                    .order_by(CasePause.started_at)):
            result[p.complaint_id].append((p.started_at, p.ended_at))
    return result


def approved_extra_days(complaint_ids: Iterable[int], since: Mapping[int, datetime] | None = None
                        ) -> dict[int, int]:
    """Working days added to each case by approved extensions (for a case in ``since``, only those decided after)."""
    ids = list(complaint_ids)
    since = since or {}
    result = {i: 0 for i in ids}
    if ids:
        for e in db.session.scalars(select(Extension).where(Extension.complaint_id.in_(ids),
                                                            Extension.status == ExtensionStatus.APPROVED)):
            start = since.get(e.complaint_id)
            if start is None or e.decided_at is None or e.decided_at >= start:
                result[e.complaint_id] += e.extra_days
    return result


def clock_start(complaint: Complaint) -> datetime:
    """When the case's clock started: its reopening (重办, counted as a new receipt) if any, else its receipt."""
    reopened = (complaint.deadline_trace or {}).get("reopened_at")
    if reopened:
        try:
            started = datetime.fromisoformat(reopened)
        except (TypeError, ValueError):
            started = None
        if started is not None and started.tzinfo is not None:
            return started
    return complaint.received_at


def _reopen_since(complaints: Iterable[Complaint]) -> dict[int, datetime]:
    return {c.id: clock_start(c) for c in complaints if clock_start(c) != c.received_at}


def deadline_for(complaint: Complaint, *, now: datetime | None = None,
                 pauses: Sequence[tuple[datetime, datetime | None]] | None = None,
                 extra_days: int | None = None) -> Deadline:
    """The case's deadline from its clock start, rule, pauses and approved extensions (read from the database)."""
    if complaint.working_days is None:
        raise ValueError("the case has no deadline rule yet")
    if pauses is None:
        pauses = case_pauses([complaint.id])[complaint.id] if complaint.id else []
    if extra_days is None:
        extra_days = (approved_extra_days([complaint.id], _reopen_since([complaint]))[complaint.id]
                      if complaint.id else 0)
    return compute_deadline(clock_start(complaint), complaint.working_days, rule=complaint.deadline_rule or "",
                            pauses=pauses, extra_days=extra_days, now=now)


def _comparable(trace: dict[str, Any] | None) -> Any:
    """A stored trace without what changes on every recomputation (versions, an open pause's assumed end)."""
    if not trace:
        return None
    return {k: v for k, v in trace.items() if k not in ("calendar_versions", "pauses")}


def _stored_trace(complaint: Complaint, deadline: Deadline) -> dict[str, Any]:
    trace = deadline.to_json()
    reopened = (complaint.deadline_trace or {}).get("reopened_at")
    if reopened and deadline.received_at is not None and clock_start(complaint) == deadline.received_at:
        trace["reopened_at"] = reopened  # still the same round of handling
    return trace


def deadline_differs(complaint: Complaint, deadline: Deadline) -> bool:
    """Whether storing ``deadline`` would change anything a user sees (date, provisional mark, trace)."""
    return (complaint.due_date != deadline.due_date
            or bool(complaint.deadline_provisional) != deadline.provisional
            or _comparable(complaint.deadline_trace) != _comparable(_stored_trace(complaint, deadline)))


def apply_deadline(complaint: Complaint, deadline: Deadline) -> bool:
    """Store ``deadline`` on the case; True when anything a user sees (date, provisional, trace) changed."""
    if not deadline_differs(complaint, deadline):
        return False
    complaint.deadline_trace = _stored_trace(complaint, deadline)
    complaint.due_date = deadline.due_date
    complaint.due_at = deadline.due_at
    complaint.deadline_provisional = deadline.provisional
    complaint.deadline_rule = DeadlineRule(deadline.rule) if deadline.rule else complaint.deadline_rule
    complaint.working_days = deadline.working_days
    return True


def recompute_open_deadlines(*, actor: Any, batch_size: int = 500) -> int:
    """Recompute the deadline of every case still to do on the current calendar; a moved due date is logged.

    Returns the number of cases whose due date or provisional mark changed. A
    case changed by someone else meanwhile is skipped: the change that touched
    it recomputed its deadline already. A case awaiting triage that has no
    deadline (registered before the clock started at receipt: migration
    0007_triage_clock) gets it here, counted from its receipt, and counts as
    changed. Safe to run twice.
    """
    invalidate_calendar_cache()
    to_do = Status.values(Status.to_do())
    moved, last_id = 0, 0
    now = utcnow()
    while True:
        cases = list(db.session.scalars(
            select(Complaint).where(Complaint.status.in_(to_do), Complaint.id > last_id)
            .order_by(Complaint.id).limit(batch_size)))
        if not cases:
            break
        last_id = cases[-1].id
        ids = [c.id for c in cases]
        pauses, extras = case_pauses(ids), approved_extra_days(ids, _reopen_since(cases))
        for complaint in cases:
            if complaint.working_days is None:
                moved += _start_missing_clock(complaint, actor=actor, now=now)
                continue
            old_date, old_provisional = complaint.due_date, bool(complaint.deadline_provisional)
            deadline = deadline_for(complaint, now=now, pauses=pauses[complaint.id], extra_days=extras[complaint.id])
            if not deadline_differs(complaint, deadline):
                continue
            try:
                with db.session.begin_nested():
                    apply_deadline(complaint, deadline)
                    _recompute_co_handlers(complaint, pauses[complaint.id], extras[complaint.id], now)
                    if old_date == deadline.due_date and old_provisional == deadline.provisional:
                        continue  # e.g. a holiday renamed inside the window: the trace is refreshed silently
                    data = {"from": old_date.isoformat() if old_date else None, "to": deadline.due_date.isoformat(),
                            "provisional": deadline.provisional, "calendar_versions": deadline.calendar_versions}
                    log_event(complaint, "deadline_recomputed", actor=actor, note=_moved_note(old_date, deadline),
                              data=data)
                    record(actor, "complaint.deadline_recomputed", complaint, data)
            except StaleDataError:
                continue
            moved += 1
    return moved


def _start_missing_clock(complaint: Complaint, *, actor: Any, now: datetime) -> int:
    """Give a case registered before the clock started at receipt its deadline (1), unless someone changed it (0)."""
    try:
        with db.session.begin_nested():
            deadline = start_clock(complaint, actor=actor, now=now)
            record(actor, "complaint.deadline_set", complaint,
                   {"due_date": deadline.due_date.isoformat(), "rule": DeadlineRule.STANDARD.value,
                    "provisional": deadline.provisional, "from_receipt": True})
    except StaleDataError:
        return 0
    return 1


def cases_without_a_clock() -> int:
    """Cases still to do that have no deadline yet (registered before the clock started at receipt)."""
    return db.session.scalar(select(func.count()).select_from(Complaint).where(
        Complaint.status.in_(Status.values(Status.to_do())), Complaint.working_days.is_(None))) or 0


def _hospital_language() -> Any:
    """Stored notes are in the hospital's language (a job has no locale; the complainant's is not the staff's)."""
    return force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_Hans"))


def _moved_note(old_date: date | None, deadline: Deadline) -> str:
    """The timeline note, in the hospital's language (it is stored; jobs have no request to take a locale from)."""
    with _hospital_language():
        if old_date == deadline.due_date:
            return gettext("工作日历已正式录入，办理期限 %(date)s 确认不变。", date=deadline.due_date.isoformat())
        note = gettext("工作日历调整，办理期限由 %(old)s 变更为 %(new)s。",
                       old=old_date.isoformat() if old_date else "—", new=deadline.due_date.isoformat())
        return note + (gettext("（临时计算）") if deadline.provisional else "")


def _recompute_co_handlers(complaint: Complaint, pauses, extra_days: int, now: datetime) -> None:
    """Co-handlers' sub-deadlines follow the case's (their rule lives with the handling service)."""
    co = [cd for cd in complaint.departments if cd.role == CaseRole.CO and cd.active]
    if not co:
        return
    for cd in co:
        cd.due_at = co_handler_due_at(complaint, pauses=pauses, extra_days=extra_days, now=now)


# The case's clock, as the handling services move it ---------------------------------

def rule_days(institution_id: int, rule: str) -> int:
    settings = complaint_settings(institution_id)
    return settings.complex_days if rule == DeadlineRule.COMPLEX else settings.standard_days


def update_deadline(complaint: Complaint, *, rule: str | None = None, now: datetime | None = None
                    ) -> Deadline:
    """Recompute the due date from the day of receipt under ``rule``, pauses excluded and approved extensions added.

    The rule's working days are read from the institution's settings when the case takes the rule; a case
    keeps the days it was given under its rule (a later change of the settings is for cases registered
    later). Co-handlers' sub-deadlines follow (CO_HANDLER_LEAD working days before the case's own).
    """
    if rule is not None and (complaint.working_days is None or complaint.deadline_rule != DeadlineRule(rule)):
        complaint.deadline_rule = DeadlineRule(rule)
        complaint.working_days = rule_days(complaint.institution_id, rule)
    elif complaint.working_days is None:
        complaint.deadline_rule = DeadlineRule.STANDARD
        complaint.working_days = rule_days(complaint.institution_id, DeadlineRule.STANDARD)
    db.session.flush()  # pauses and extensions just added must be visible to the queries below
    pauses = case_pauses([complaint.id])[complaint.id]
    deadline = deadline_for(complaint, now=now, pauses=pauses)
    apply_deadline(complaint, deadline)
    for cd in complaint.departments:
        if cd.role == CaseRole.CO and cd.active:
            cd.due_at = co_handler_due_at(complaint, pauses=pauses, extra_days=deadline.extra_days, now=now)
    return deadline


def start_clock(complaint: Complaint, *, actor: Any, now: datetime | None = None) -> Deadline:
    """Start a newly registered case's clock: the standard rule from the day of receipt ("于接到投诉之日起5个
    工作日内", 医疗机构投诉管理办法), whoever triages the case and whenever. The timeline says so."""
    deadline = update_deadline(complaint, rule=DeadlineRule.STANDARD, now=now)
    with _hospital_language():
        note = gettext("办理期限：%(date)s（%(days)d 个工作日，自接到投诉次日起计算）",
                       date=deadline.due_date.isoformat(), days=deadline.working_days)
    log_event(complaint, "deadline_set", actor=actor, note=note,
              data={"due_date": deadline.due_date.isoformat(), "rule": DeadlineRule.STANDARD.value,
                    "provisional": deadline.provisional})
    return deadline


def co_handler_due_at(complaint: Complaint, *, pauses=None, extra_days: int | None = None,
                      now: datetime | None = None) -> datetime:
    """A co-handler's sub-deadline: CO_HANDLER_LEAD working days before the case's, at least one working day."""
    days = max((complaint.working_days or 0) + (extra_days or 0) - CO_HANDLER_LEAD, 1)
    return compute_deadline(clock_start(complaint), days, rule=complaint.deadline_rule or DeadlineRule.STANDARD,
                            pauses=pauses or (), now=now).due_at


def working_days_left(complaint: Complaint, today: date | None = None) -> int | None:
    """Working days from today to the due date (0 = due today; negative = overdue by that many working days)."""
    if complaint.due_date is None:
        return None
    return working_days_between(today or local_today(), complaint.due_date)


def past_due(status: str, due_at: datetime | None, paused_since: datetime | None, now: datetime) -> bool:
    """The overdue rule: a case still to do (awaiting triage included), its clock running, past the end (24:00
    Beijing time) of its due day."""
    return (Status(status) in Status.to_do() and paused_since is None and due_at is not None
            and now >= due_at)


def is_overdue(complaint: Complaint, now: datetime | None = None) -> bool:
    """Past the end (24:00 Beijing time) of the due day with the clock running (past_due)."""
    return past_due(complaint.status, complaint.due_at, complaint.paused_since, now or utcnow())


def overdue_sql(now: datetime, *, statuses: Any = None) -> Any:
    """past_due as a SQL condition on Complaint, for the queues, the ledger, the statistics and the sweep.

    ``statuses`` is the caller's own test that the case is still to do, where the SQL text matters (the queues
    write the statuses literally, for the planner); ``sqlalchemy.true()`` when the query has chosen its
    statuses already. By default, Status.to_do().
    """
    if statuses is None:
        statuses = Complaint.status.in_(Status.values(Status.to_do()))
    return and_(statuses, Complaint.paused_since.is_(None), Complaint.due_at <= now)


# Triage (受理) ---------------------------------------------------------------------------

def triage_due_date(received_at: datetime, triage_days: int) -> date:
    """The last day to triage a case (until 24:00): the triage_days-th working day after the day of receipt."""
    return add_working_days(local_date(received_at), triage_days)[0]


def triage_late(status: str, received_at: datetime, triage_days: int, now: datetime) -> bool:
    """Still awaiting triage after the end (24:00 Beijing time) of its triage day."""
    if Status(status) != Status.REGISTERED:
        return False
    return now >= local_day_bounds(triage_due_date(received_at, triage_days))[1]


def triage_cutoff(triage_days: int, now: datetime) -> datetime:
    """A case received before this moment is past its triage target at ``now`` (triage_late, for SQL): the
    triage day never moves back as the receipt moves on, so these are the receipts up to the last day whose
    triage day is before today."""
    today = local_today(now)
    day = today - timedelta(days=1)
    while add_working_days(day, triage_days)[0] >= today:
        day -= timedelta(days=1)
        if (today - day).days > MAX_SPAN_DAYS:  # pragma: no cover - a calendar without working days
            raise ValueError("no working day to count")
    return local_day_bounds(day)[1]


def triage_late_sql(triage_days: int, now: datetime, *, statuses: Any = None) -> Any:
    """triage_late as a SQL condition on Complaint; ``statuses`` as for overdue_sql (default: awaiting triage)."""
    if statuses is None:
        statuses = Complaint.status == Status.REGISTERED.value
    return and_(statuses, Complaint.received_at < triage_cutoff(triage_days, now))


def due_threshold(days: int, now: datetime | None = None) -> date:
    """The date ``days`` working days after today (0 = today)."""
    return add_working_days(local_today(now), days)[0]


def reopen_deadline(complaint: Complaint, reopened_at: datetime) -> Deadline:
    """The new deadline, counted from the reopening day as from a new receipt (民法典 第二百零一条)."""
    working_days = complaint.working_days
    if working_days is None:
        working_days = rule_days(complaint.institution_id, DeadlineRule.STANDARD)
    deadline = compute_deadline(reopened_at, working_days, rule=complaint.deadline_rule or DeadlineRule.STANDARD,
                                now=reopened_at)
    apply_deadline(complaint, deadline)
    complaint.deadline_trace = {**complaint.deadline_trace, "reopened_at": reopened_at.isoformat()}
    return deadline
