"""The working-day calendar: China's official schedule, one row per exception day.

A date is a working day when it is Monday-Friday and not a holiday, or when
it is a make-up working day (调休). Years come from the chinesecalendar
package where it covers them and are edited by admins when the State Council
publishes the next year's notice; a year with no entry falls back to
Monday-Friday and every deadline that touches it is provisional.
"""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import EnumText, UTCDateTime, utcnow
from core.enums import LabelledEnum
from core.extensions import db


class DayKind(LabelledEnum):
    HOLIDAY = "holiday", _l("法定节假日")
    MAKEUP_WORKDAY = "workday", _l("调休上班")


class YearStatus(LabelledEnum):
    OFFICIAL = "official", _l("已按国务院通知录入")


class CalendarYear(db.Model):
    __tablename__ = "work_calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[YearStatus] = mapped_column(EnumText(YearStatus, 16), default=YearStatus.OFFICIAL)
    source: Mapped[str] = mapped_column(String(80))
    # Bumped on every edit; a deadline records the versions it was computed with.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))

    @property
    def id(self) -> int:
        return self.year

    @property
    def audit_label(self) -> str:
        return str(self.year)


class CalendarDay(db.Model):
    __tablename__ = "work_calendar_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[DayKind] = mapped_column(EnumText(DayKind, 16))
    name: Mapped[str] = mapped_column(String(40), default="")

    @property
    def id(self) -> str:
        return self.day.isoformat()

    @property
    def audit_label(self) -> str:
        return f"{self.day.isoformat()} {self.name}"
