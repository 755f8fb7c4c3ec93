"""Per-institution survey settings, with national defaults."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db


class SurveySettings(db.Model):
    __tablename__ = "survey_settings"

    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    # A rating at or below this score (0-100; 25 = 不满意 on a 5-point scale) raises an alert.
    alert_threshold: Mapped[float] = mapped_column(Float, default=25.0)
    # Follow-up calls are due within this many days of discharge (002 VIII: 7 days).
    followup_days: Mapped[int] = mapped_column(Integer, default=7)
    # Names and phone numbers of discharged patients are purged this many days after discharge.
    contact_retention_days: Mapped[int] = mapped_column(Integer, default=14)
    # Discharge-slip and staff survey links expire after this many days.
    link_valid_days: Mapped[int] = mapped_column(Integer, default=30)
    min_fill_seconds: Mapped[float] = mapped_column(Float, default=2.0)
    # The same device rating the same touchpoint again within this many minutes is flagged.
    repeat_window_minutes: Mapped[int] = mapped_column(Integer, default=30)
    # Staff results are shown only for groups of at least this many answers.
    staff_min_group: Mapped[int] = mapped_column(Integer, default=5)

    @property
    def id(self) -> int:
        """Settings are keyed by institution; the audit trail points at that id."""
        return self.institution_id

    @classmethod
    def defaults(cls, institution_id: int) -> SurveySettings:
        """An unsaved row with the national defaults (a read never writes settings)."""
        values = {c.name: c.default.arg for c in cls.__table__.columns
                  if c.default is not None and not callable(c.default.arg)}
        return cls(institution_id=institution_id, **values)

    @classmethod
    def of(cls, institution_id: int) -> SurveySettings:
        """The institution's settings, or the national defaults without writing them."""
        return db.session.get(cls, institution_id) or cls.defaults(institution_id)


def _column_default(name: str):
    return SurveySettings.__table__.c[name].default.arg


@dataclass(frozen=True)
class EffectiveSettings:
    """The settings a submission needs, as plain values (cached with a QR code's look-up), defaults filled in."""

    alert_threshold: float = _column_default("alert_threshold")
    min_fill_seconds: float = _column_default("min_fill_seconds")
    repeat_window_minutes: int = _column_default("repeat_window_minutes")

    @classmethod
    def of(cls, row: SurveySettings | None) -> EffectiveSettings:
        if row is None:
            return cls()
        return cls(row.alert_threshold, row.min_fill_seconds, row.repeat_window_minutes)
