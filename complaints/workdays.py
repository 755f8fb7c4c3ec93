"""Working days: China's official calendar, kept in the database, and the fallback for years not yet announced.

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

Deadlines are counted on this calendar by complaints.deadlines.
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from chinese_calendar import get_solar_terms
from flask import g, has_app_context
from sqlalchemy import select

from complaints.models import CalendarDay, CalendarYear, DayKind
from core.extensions import db

WORKING = "working"
WEEKEND = "weekend"
HOLIDAY = "holiday"
MAKEUP_WORKDAY = "makeup_workday"

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
