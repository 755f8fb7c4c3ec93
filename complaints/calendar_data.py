"""The working-day calendar's data: seeding from chinesecalendar, and admins' edits.

Each year's schedule is the State Council's notice (国务院办公厅关于××年部分节假日安排
的通知), published in the autumn of the year before. The chinesecalendar package
carries the notices up to its release (1.11.0: 2004-2026), so years it covers are
seeded from it; later years are entered by a platform admin from the notice and
then marked official. Until then deadlines in that year are provisional (see
complaints.deadlines).

One CalendarDay row per day the notice names: a holiday (including the weekend
days inside a holiday span, so the month grid reads like the notice) or a
make-up workday (调休上班, always a Saturday or Sunday). Every edit of an
official year bumps its version, which each deadline records.

A year seeded from the package stays the package's until an admin edits it:
re-seeding syncs a package-owned year with the installed package (bumping its
version when anything differs) and never touches a year an admin has edited or
is drafting.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import click
from flask.cli import with_appcontext
from flask_babel import gettext
from sqlalchemy import select

from complaints.deadlines import cases_without_a_clock, recompute_open_deadlines
from complaints.models import CalendarDay, CalendarYear, DayKind, YearStatus
from complaints.workdays import invalidate_calendar_cache, statutory_holidays
from core.audit import record
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from core.services import ServiceError, clean_text
from organisation.models import StaffUser

PACKAGE_SOURCE = "chinesecalendar"
NOTICE_SOURCE = "国务院办公厅通知"
FIRST_YEAR, LAST_YEAR = 2000, 2100

HOLIDAY_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节", "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节", "National Day": "国庆节", "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


class CalendarError(ServiceError):
    """A calendar edit was refused; the message is for the user."""


# The package --------------------------------------------------------------------

def package_version() -> str:
    import chinese_calendar

    return getattr(chinese_calendar, "__version__", "")


def package_years() -> list[int]:
    """Years the installed chinesecalendar package carries a notice for."""
    from chinese_calendar import constants

    return sorted({d.year for d in constants.holidays} | {d.year for d in constants.workdays})


def package_days(year: int) -> dict[date, tuple[str, str]]:
    """The package's exception days of ``year``: date -> (DayKind value, Chinese name)."""
    from chinese_calendar import constants

    days = {}
    for source, kind in ((constants.holidays, DayKind.HOLIDAY), (constants.workdays, DayKind.MAKEUP_WORKDAY)):
        for day, name in source.items():
            if day.year == year:
                label = HOLIDAY_NAMES.get(name, name)
                days[day] = (kind.value, label if kind is DayKind.HOLIDAY else f"{label}调休上班")
    return days


def _year_days(year: int) -> dict[date, CalendarDay]:
    return {d.day: d for d in db.session.scalars(select(CalendarDay).where(
        CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31)))}


def _package_owned(row: CalendarYear) -> bool:
    return row.updated_by_id is None and row.source.startswith(PACKAGE_SOURCE)


def seed_from_chinesecalendar(years: Iterable[int] | None = None, *, actor: Any) -> int:
    """Fill the calendar from chinesecalendar for the years it covers; returns the days added, changed or removed.

    Idempotent: a year already seeded from the same data is left alone; a
    package-owned year whose data differ is synced and its version bumped; a
    year an admin edited or is drafting is never touched.
    """
    covered = set(package_years())
    wanted = sorted(covered if years is None else {int(y) for y in years} & covered)
    source = f"{PACKAGE_SOURCE} {package_version()}".strip()
    changes = 0
    for year in wanted:
        row = db.session.get(CalendarYear, year)
        existing = _year_days(year)
        desired = package_days(year)
        if row is None and existing:
            continue  # an admin's draft: theirs to finish
        if row is not None and not _package_owned(row):
            continue
        added = removed = changed = 0
        for day, (kind, name) in desired.items():
            current = existing.get(day)
            if current is None:
                db.session.add(CalendarDay(day=day, kind=kind, name=name))
                added += 1
            elif (current.kind, current.name) != (kind, name):
                current.kind, current.name = kind, name
                changed += 1
        for day, current in existing.items():
            if day not in desired:
                db.session.delete(current)
                removed += 1
        if row is None:
            row = CalendarYear(year=year, status=YearStatus.OFFICIAL.value, source=source, version=1,
                               updated_at=utcnow(), updated_by_id=None)
            db.session.add(row)
            action = "calendar.seed"
        elif added or removed or changed:
            row.version += 1
            row.source, row.updated_at = source, utcnow()
            action = "calendar.sync"
        else:
            continue
        db.session.flush()
        record(actor, action, row, {"source": source, "added": added, "changed": changed, "removed": removed,
                                    "version": row.version})
        changes += added + changed + removed
    invalidate_calendar_cache()
    return changes


# Admins' edits ------------------------------------------------------------------

def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise CalendarError(gettext("年份须在 %(first)d 年至 %(last)d 年之间。", first=FIRST_YEAR, last=LAST_YEAR))


def _touch_year(year: int, actor: Any) -> CalendarYear | None:
    """Bump an official year's version after an edit (a draft year has none yet)."""
    row = db.session.get(CalendarYear, year)
    if row is not None:
        row.version += 1
        row.updated_at = utcnow()
        row.updated_by_id = actor.id if isinstance(actor, StaffUser) else row.updated_by_id
    return row


def _staff_id(actor: Any) -> int | None:
    return actor.id if isinstance(actor, StaffUser) else None


def set_calendar_day(day: date, kind: DayKind | str, name: str, *, actor: Any) -> CalendarDay:
    """Enter or change one day of a year's schedule; a make-up workday must be a Saturday or Sunday."""
    _check_year(day.year)
    kind = DayKind(kind)
    name = clean_text(name, field="name", label=gettext("名称"), limit=40, error=CalendarError)
    if kind is DayKind.MAKEUP_WORKDAY and day.weekday() < 5:
        raise CalendarError(gettext("调休上班日应为星期六或星期日：%(day)s 本来就是工作日。", day=day.isoformat()))
    row = db.session.get(CalendarDay, day)
    before = None if row is None else {"kind": row.kind, "name": row.name}
    if before == {"kind": kind.value, "name": name}:
        return row
    if row is None:
        row = CalendarDay(day=day, kind=kind.value, name=name)
        db.session.add(row)
    else:
        row.kind, row.name = kind.value, name
    year = _touch_year(day.year, actor)
    db.session.flush()
    record(actor, "calendar.day_set", row, {"kind": kind.value, "name": name, "before": before,
                                            "year_version": year.version if year else None})
    invalidate_calendar_cache()
    return row


def remove_calendar_day(day: date, *, actor: Any) -> None:
    """Remove one day from a year's schedule (it becomes an ordinary weekday or weekend day)."""
    _check_year(day.year)
    row = db.session.get(CalendarDay, day)
    if row is None:
        raise CalendarError(gettext("%(day)s 不在节假日安排中。", day=day.isoformat()))
    year = _touch_year(day.year, actor)
    record(actor, "calendar.day_removed", row, {"kind": row.kind, "name": row.name,
                                                "year_version": year.version if year else None})
    db.session.delete(row)
    db.session.flush()
    invalidate_calendar_cache()


def mark_year_official(year: int, notice: str, *, actor: Any) -> CalendarYear:
    """Confirm a year's schedule from the State Council notice; its deadlines stop being provisional."""
    _check_year(year)
    notice = " ".join((notice or "").split())
    if not notice:
        raise CalendarError(gettext("请填写通知文号。"))
    source = f"{NOTICE_SOURCE} {notice}"
    if len(source) > 80:
        raise CalendarError(gettext("通知文号过长。"))
    days = _year_days(year)
    if not any(d.kind == DayKind.HOLIDAY.value for d in days.values()):
        raise CalendarError(gettext("请先录入 %(year)d 年的法定节假日，再标记为正式。", year=year))
    row = db.session.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year, status=YearStatus.OFFICIAL.value, source=source, version=1,
                           updated_at=utcnow(), updated_by_id=_staff_id(actor))
        db.session.add(row)
        action = "calendar.year_official"
    else:
        row.source = source
        _touch_year(year, actor)
        action = "calendar.year_source"
    db.session.flush()
    record(actor, action, row, {"source": source, "days": len(days), "version": row.version})
    invalidate_calendar_cache()
    return row


def prefill_statutory_holidays(year: int, *, actor: Any) -> int:
    """Enter a draft year's statutory holidays (全国年节及纪念日放假办法) to start from; returns the days added."""
    _check_year(year)
    if db.session.get(CalendarYear, year) is not None:
        raise CalendarError(gettext("%(year)d 年已按通知录入，不能再预填。", year=year))
    existing = _year_days(year)
    added = 0
    for day, name in sorted(statutory_holidays(year).items()):
        if day not in existing:
            db.session.add(CalendarDay(day=day, kind=DayKind.HOLIDAY.value, name=name))
            added += 1
    db.session.flush()
    record(actor, "calendar.prefill", ("work_calendar_year", year), {"added": added})
    invalidate_calendar_cache()
    return added


# Command line -------------------------------------------------------------------

@click.command("seed-calendar")
@click.option("--year", "years", multiple=True, type=int, help="Only these years (default: all the package covers).")
@with_appcontext
def seed_calendar_command(years: tuple[int, ...]) -> None:
    """Load China's working-day calendar from the chinesecalendar package (safe to run again)."""
    covered = package_years()
    outside = sorted(set(years) - set(covered))
    if outside:
        click.echo(f"chinesecalendar {package_version()} does not cover {', '.join(map(str, outside))}; "
                   "enter those years on the admin calendar page.")
    changes = seed_from_chinesecalendar(years or None, actor="cli")
    db.session.commit()
    click.echo(f"Calendar: {changes} day(s) added or changed ({covered[0]}–{covered[-1]} available).")
    # Cases registered before the clock started at receipt (migration 0007_triage_clock) get their deadline
    # here too: this command runs on every upgrade.
    unclocked = cases_without_a_clock()
    if changes or unclocked:
        moved = recompute_open_deadlines(actor="cli")
        db.session.commit()
        click.echo(f"Open cases whose deadline moved: {moved}"
                   + (f" ({unclocked} awaiting triage given their deadline from receipt)." if unclocked else "."))
    today = local_today()
    missing = [y for y in range(today.year, today.year + 2) if db.session.get(CalendarYear, y) is None]
    if missing:
        click.echo(f"No official calendar for {', '.join(map(str, missing))}: deadlines there are provisional.")


__all__ = ["CalendarError", "mark_year_official", "prefill_statutory_holidays", "remove_calendar_day",
           "seed_from_chinesecalendar", "set_calendar_day", "package_years"]
