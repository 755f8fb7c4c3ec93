"""Discharges awaiting the 7-day follow-up call, the calls, and API tokens for feeds."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import EnumText, InstitutionScoped, UTCDateTime, utcnow
from core.enums import LabelledEnum
from core.extensions import db
from organisation.models import Department, StaffUser, Touchpoint


class FollowupOutcome(LabelledEnum):
    PENDING = "pending", _l("待回访")
    REACHED = "reached", _l("已接通")
    NO_ANSWER = "no_answer", _l("无人接听")
    WRONG_NUMBER = "wrong_number", _l("号码错误")
    DECLINED = "declined", _l("拒绝回访")

    @property
    def is_final(self) -> bool:
        """A call with this outcome ends the follow-up (no more attempts are due)."""
        return self in (FollowupOutcome.REACHED, FollowupOutcome.WRONG_NUMBER, FollowupOutcome.DECLINED)


class Discharge(InstitutionScoped, db.Model):
    """One discharged patient. Name and phone exist only while the call is due."""

    __tablename__ = "survey_discharge"
    __table_args__ = (
        UniqueConstraint("institution_id", "external_ref_hash"),
        Index("ix_survey_discharge_inst_date", "institution_id", "discharge_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoint.id"))
    discharge_date: Mapped[date] = mapped_column(Date)
    patient_name: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(20))
    # A salted hash of the hospital's own reference (e.g. the admission number),
    # so that re-sending the same discharge updates instead of duplicating.
    external_ref_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(12), default="upload")
    outcome: Mapped[FollowupOutcome] = mapped_column(EnumText(FollowupOutcome, 16), default=FollowupOutcome.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_call_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The discharge-slip survey link: single use, expires.
    link_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    link_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department] = relationship()
    touchpoint: Mapped[Touchpoint | None] = relationship()
    calls: Mapped[list[FollowupCall]] = relationship(back_populates="discharge", order_by="FollowupCall.id")


class FollowupCall(InstitutionScoped, db.Model):
    __tablename__ = "survey_followup_call"

    id: Mapped[int] = mapped_column(primary_key=True)
    discharge_id: Mapped[int] = mapped_column(ForeignKey("survey_discharge.id"), index=True)
    nurse_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    outcome: Mapped[FollowupOutcome] = mapped_column(EnumText(FollowupOutcome, 16))
    called_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_response.id"))

    discharge: Mapped[Discharge] = relationship(back_populates="calls")
    nurse: Mapped[StaffUser] = relationship()


class ApiToken(InstitutionScoped, db.Model):
    """A bearer token for a hospital system that pushes discharges (stored hashed)."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Chosen at creation (a year by default); None: never expires (tokens issued before expiry existed).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def audit_label(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at
