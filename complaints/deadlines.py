"""Working-day deadlines: China's official calendar and the Civil Code's way of counting.

The action plan asks hospitals to fix what complaints reveal "限时整改落实，结果及时
回应当事人和社会公众" (seed 000, II.11). Complaints are answered "于接到投诉之日起5个
工作日内" (10 when several departments must be coordinated; 医疗机构投诉管理办法),
and periods are counted as 民法典 第二百零一条 says: "开始的当日不计入，自下一日开始
计算". So the day of receipt never counts, and the deadline is the end (24:00
Beijing time) of the N-th working day after it; a complaint received on a
Saturday or a holiday is due on the N-th working day after that day too. (chinesecalendar's ``find_workday`` snaps a
non-working start day forward first and is therefore 1-4 days late: check C3.)

Working days follow the official calendar kept in the database (CalendarYear,
CalendarDay; complaints.calendar_data seeds and edits it):

* a year with a CalendarYear row is *official*: Monday-Friday is worked except
  its holidays, Saturday and Sunday are off except its make-up workdays (调休);
  the days entered for a year without a CalendarYear row are a draft and are
  not used;
* a year without one is *provisional*: Monday-Friday, minus the statutory
  holidays that 《全国年节及纪念日放假办法》(2024 revision) fixes by itself
  (元旦 1/1, 春节 除夕-初三, 清明节, 劳动节 5/1-5/2, 端午节, 中秋节, 国庆节 10/1-10/3).
  Only the bridging days and the make-up workdays depend on the State Council's
  yearly notice, so this is the closest guess the law allows (check C6: a case
  received on 2026-12-30 is provisionally due on 2027-01-07, not 01-06). Every
  deadline that counts a day of such a year is marked provisional, and staff
  pages warn admins until the year is entered.

Paused periods (待补充材料, 调解, 鉴定) are excluded, the way 医疗纠纷预防和处理条例
第四十条 excludes 鉴定 time from the mediation period: a working day that lies
entirely inside a pause (from its 00:00 to the next 00:00, Beijing time) is not
counted; a day on which the clock ran for any part of the day counts. A pause
still open is taken to end ``now``: the deadline shown while a case waits is the
one it would have if the clock restarted at once, and the trace says so.
"""
from __future__ import annotations

import time as _time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app, g, has_app_context
from flask_babel import force_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from complaints.models import CalendarDay, CalendarYear, CasePause, Complaint, DayKind, Extension, Status
from core.audit import record
from core.clock import local_timezone
from core.db import utcnow
from core.extensions import db

WORKING = "working"
WEEKEND = "weekend"
HOLIDAY = "holiday"
MAKEUP_WORKDAY = "makeup_workday"
PAUSED = "paused"

# Days counted at most: a guard against a pause that never lets the count advance.
MAX_SPAN_DAYS = 3660

# Lunar festivals for years the State Council has not announced yet: (春节 正月初一, 端午, 中秋),
# from the lunar calendar (checked against the `holidays` package, 2026-11). 除夕 is the day
# before 初一. Past 2036 only the solar-date holidays and 清明 remain in the fallback.
LUNAR_FESTIVALS: dict[int, tuple[str, str, str]] = {
    2027: ("2027-02-06", "2027-06-09", "2027-09-15"),
    2028: ("2028-01-26", "2028-05-28", "2028-10-03"),
    2029: ("2029-02-13", "2029-06-16", "2029-09-22"),
    2030: ("2030-02-03", "2030-06-05", "2030-09-12"),
    2031: ("2031-01-23", "2031-06-24", "2031-10-01"),
    2032: ("2032-02-11", "2032-06-12", "2032-09-19"),
    2033: ("2033-01-31", "2033-06-01", "2033-09-08"),
    2034: ("2034-02-19", "2034-06-20", "2034-09-27"),
    2035: ("2035-02-08", "2035-06-10", "2035-09-16"),
    2036: ("2036-01-28", "2036-05-30", "2036-10-04"),
}


# The calendar, loaded by year -----------------------------------------------------

@dataclass(frozen=True)
class DayInfo:
    """How the calendar classifies one date."""

    day: date
    working: bool
    kind: str            # working | weekend | holiday | makeup_workday
    name: str = ""
    provisional: bool = False


@dataclass
class YearCalendar:
    year: int
    official: bool
    version: int                                   # 0 for a provisional year
    days: dict[date, tuple[str, str]]              # exception days: date -> (DayKind value, name)
    _cumulative: list[int] | None = None           # working days from 1 Jan up to each day, inclusive

    def info(self, day: date) -> DayInfo:
        kind, name = self.days.get(day, (None, ""))
        weekend = day.weekday() >= 5
        if kind == DayKind.MAKEUP_WORKDAY.value:
            return DayInfo(day, True, MAKEUP_WORKDAY, name, not self.official)
        if kind == DayKind.HOLIDAY.value:
            return DayInfo(day, False, HOLIDAY, name, not self.official)
        return DayInfo(day, not weekend, WEEKEND if weekend else WORKING, "", not self.official)

    def working_days_through(self, day: date) -> int:
        """Working days from 1 January up to and including ``day``."""
        if self._cumulative is None:
            total, cumulative = 0, []
            current = date(self.year, 1, 1)
            while current.year == self.year:
                total += self.info(current).working
                cumulative.append(total)
                current += timedelta(days=1)
            self._cumulative = cumulative
        return self._cumulative[day.timetuple().tm_yday - 1]

    @property
    def working_day_total(self) -> int:
        return self.working_days_through(date(self.year, 12, 31))


def statutory_holidays(year: int) -> dict[date, str]:
    """The holidays 《全国年节及纪念日放假办法》 fixes by itself (no 调休): the provisional calendar."""
    days = {date(year, 1, 1): "元旦", date(year, 5, 1): "劳动节", date(year, 5, 2): "劳动节"}
    for d in (1, 2, 3):
        days[date(year, 10, d)] = "国庆节"
    qingming = _qingming(year)
    if qingming is not None:
        days[qingming] = "清明节"
    lunar = LUNAR_FESTIVALS.get(year)
    if lunar is not None:
        new_year, dragon_boat, mid_autumn = (date.fromisoformat(v) for v in lunar)
        for offset in range(-1, 3):
            days[new_year + timedelta(days=offset)] = "春节"
        days[dragon_boat] = "端午节"
        days.setdefault(mid_autumn, "中秋节")  # 2028, 2031: it falls inside 国庆节
    return days


def _qingming(year: int) -> date | None:
    try:
        from chinese_calendar import get_solar_terms  # lazy: only a provisional year needs it
    except ImportError:  # pragma: no cover - chinesecalendar is a runtime dependency
        return None
    try:
        terms = get_solar_terms(date(year, 4, 1), date(year, 4, 10))
    except Exception:  # pragma: no cover - outside the package's formula range
        return None
    return next((d for d, name in terms if name == "清明"), None)


class WorkCalendar:
    """Years of the official calendar, loaded on demand two at a time (never a query per day)."""

    def __init__(self) -> None:
        self._years: dict[int, YearCalendar] = {}

    def year(self, year: int) -> YearCalendar:
        if year not in self._years:
            self.load(year, year + 1)
        return self._years[year]

    def load(self, first: int, last: int) -> None:
        wanted = [y for y in range(first, last + 1) if y not in self._years and 1 <= y <= 9998]
        if not wanted:
            return
        first, last = min(wanted), max(wanted)
        rows = {row.year: row for row in db.session.scalars(
            select(CalendarYear).where(CalendarYear.year.between(first, last)))}
        days: dict[int, dict[date, tuple[str, str]]] = {y: {} for y in wanted}
        official = [y for y in wanted if y in rows]
        if official:
            for row in db.session.scalars(select(CalendarDay).where(
                    CalendarDay.day >= date(min(official), 1, 1), CalendarDay.day <= date(max(official), 12, 31))):
                if row.day.year in rows and row.day.year in days:
                    days[row.day.year][row.day] = (str(DayKind(row.kind).value), row.name or "")
        for y in wanted:
            if y in rows:
                self._years[y] = YearCalendar(y, True, rows[y].version, days[y])
            else:
                fallback = {d: (DayKind.HOLIDAY.value, name) for d, name in statutory_holidays(y).items()}
                self._years[y] = YearCalendar(y, False, 0, fallback)

    def info(self, day: date) -> DayInfo:
        return self.year(day.year).info(day)

    def version(self, year: int) -> int:
        return self.year(year).version


_CACHE_KEY = "_complaints_work_calendar"


def work_calendar() -> WorkCalendar:
    """The calendar for this request or job (one per app context; edits call invalidate_calendar_cache)."""
    if not has_app_context():
        return WorkCalendar()
    calendar = g.get(_CACHE_KEY)
    if calendar is None:
        calendar = WorkCalendar()
        setattr(g, _CACHE_KEY, calendar)
    return calendar


def invalidate_calendar_cache() -> None:
    """Forget the loaded calendar and the banner's cached answer after a calendar edit."""
    if has_app_context():
        g.pop(_CACHE_KEY, None)
    _warning_cache.clear()


def is_working_day(day: date) -> tuple[bool, bool]:
    """(working?, provisional?) for ``day`` under the official calendar or the fallback."""
    info = work_calendar().info(day)
    return info.working, info.provisional


def add_working_days(start: date, n: int) -> tuple[date, bool]:
    """The n-th working day after ``start`` (``start`` itself never counts) and whether that is provisional."""
    if n < 0:
        raise ValueError("n must not be negative")
    calendar = work_calendar()
    day, counted, provisional = start, 0, calendar.info(start).provisional if n == 0 else False
    while counted < n:
        day += timedelta(days=1)
        if (day - start).days > MAX_SPAN_DAYS:
            raise ValueError("working-day span too long")
        info = calendar.info(day)
        provisional |= info.provisional
        counted += info.working
    return day, provisional


def working_days_between(a: date, b: date) -> int:
    """Working days after ``a`` up to and including ``b`` (negative when ``b`` is before ``a``).

    The inverse of add_working_days: a case received on ``a`` and answered on
    working day ``b`` took ``working_days_between(a, b)`` working days.
    """
    if b < a:
        return -working_days_between(b, a)
    calendar = work_calendar()
    if a.year == b.year:
        year = calendar.year(a.year)
        return year.working_days_through(b) - year.working_days_through(a)
    first = calendar.year(a.year)
    total = first.working_day_total - first.working_days_through(a)
    for y in range(a.year + 1, b.year):
        total += calendar.year(y).working_day_total
    return total + calendar.year(b.year).working_days_through(b)


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
    tz = local_timezone()
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
    receipt_day = received_at.astimezone(tz).date()
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
        start = datetime.combine(day, time.min, tzinfo=tz)
        end = start + timedelta(days=1)
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
    due_at = (datetime.combine(day, time.min, tzinfo=tz) + timedelta(days=1)).astimezone(UTC)
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
                                                            Extension.status == "approved")):
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
    complaint.deadline_rule = deadline.rule or complaint.deadline_rule
    complaint.working_days = deadline.working_days
    return True


def recompute_open_deadlines(*, actor: Any, batch_size: int = 500) -> int:
    """Recompute every open case's deadline on the current calendar; a moved due date is logged on the case.

    Returns the number of cases whose due date or provisional mark changed. A
    case changed by someone else meanwhile is skipped: the change that touched
    it recomputed its deadline already. Safe to run twice.
    """
    from complaints.workflow import log_event  # local: workflow's services may import this module

    invalidate_calendar_cache()
    open_statuses = [s.value for s in Status.open_statuses()]
    moved, last_id = 0, 0
    now = utcnow()
    while True:
        cases = list(db.session.scalars(
            select(Complaint).where(Complaint.status.in_(open_statuses), Complaint.working_days.is_not(None),
                                    Complaint.id > last_id).order_by(Complaint.id).limit(batch_size)))
        if not cases:
            break
        last_id = cases[-1].id
        ids = [c.id for c in cases]
        pauses, extras = case_pauses(ids), approved_extra_days(ids, _reopen_since(cases))
        for complaint in cases:
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


def _moved_note(old_date: date | None, deadline: Deadline) -> str:
    """The timeline note, in the hospital's language (it is stored; jobs have no request to take a locale from)."""
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "zh_Hans")):
        if old_date == deadline.due_date:
            return gettext("工作日历已正式录入，办理期限 %(date)s 确认不变。", date=deadline.due_date.isoformat())
        note = gettext("工作日历调整，办理期限由 %(old)s 变更为 %(new)s。",
                       old=old_date.isoformat() if old_date else "—", new=deadline.due_date.isoformat())
        return note + (gettext("（临时计算）") if deadline.provisional else "")


def _recompute_co_handlers(complaint: Complaint, pauses, extra_days: int, now: datetime) -> None:
    """Co-handlers' sub-deadlines follow the case's (their rule lives with the handling service)."""
    co = [cd for cd in complaint.departments if cd.role == "co" and cd.active]
    if not co:
        return
    from complaints.handling import co_handler_due_at  # local: handling imports this module

    for cd in co:
        cd.due_at = co_handler_due_at(complaint, pauses=pauses, extra_days=extra_days, now=now)


# The warning on staff pages ---------------------------------------------------------

def missing_years(today: date, ahead: int = 1) -> list[int]:
    """Years from ``today``'s to ``ahead`` years later that have no official calendar entry."""
    years = list(range(today.year, today.year + ahead + 1))
    present = set(db.session.scalars(select(CalendarYear.year).where(CalendarYear.year.in_(years))))
    return [y for y in years if y not in present]


def warning_years(today: date) -> list[int]:
    """Years to warn admins about: this year always, next year from November (the notice's usual month)."""
    return [y for y in missing_years(today, 1) if y == today.year or today.month >= 11]


WARNING_TTL_SECONDS = 60
_warning_cache: dict[str, Any] = {}


def cached_warning_years(today: date) -> list[int]:
    """warning_years, remembered for a minute per process (it runs on every staff page)."""
    hit = _warning_cache.get("value")
    if hit is not None and hit[0] == today and _time.monotonic() - hit[1] < WARNING_TTL_SECONDS:
        return hit[2]
    years = warning_years(today)
    _warning_cache["value"] = (today, _time.monotonic(), years)
    return years
