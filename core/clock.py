"""Hospital time: the one home of "today in Beijing".

Rows store UTC (core.db.UTCDateTime). Everything a person counts in days (deadlines,
follow-up windows, reporting periods, "today" in a list) is counted in the hospitals' time
zone, the BABEL_DEFAULT_TIMEZONE setting (Beijing time by default, see core.config).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import overload
from zoneinfo import ZoneInfo

from flask import current_app

from core.db import utcnow


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_timezone() -> ZoneInfo:
    """The hospitals' time zone (the BABEL_DEFAULT_TIMEZONE setting)."""
    return _zone(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def local_today(now: datetime | None = None) -> date:
    """Today (or the day of ``now``) in the hospitals' time zone."""
    return (now or utcnow()).astimezone(local_timezone()).date()


@overload
def local_date(value: datetime) -> date: ...
@overload
def local_date(value: None) -> None: ...
@overload
def local_date(value: datetime | None) -> date | None: ...


def local_date(value: datetime | None) -> date | None:
    """The hospital calendar day of a stored moment; None stays None."""
    return value.astimezone(local_timezone()).date() if value is not None else None


def local_midnight(day: date) -> datetime:
    """The start of a calendar day in the hospitals' time zone, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=local_timezone())


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in the hospitals' time zone, as aware datetimes."""
    start = local_midnight(day)
    return start, local_midnight(day + timedelta(days=1))
