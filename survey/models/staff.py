"""One-time anonymous staff survey tokens, handed out per department."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import InstitutionScoped, UTCDateTime, utcnow
from core.extensions import db
from organisation.models import Department
from survey.models.templates import SurveyTemplate


class StaffSurveyBatch(InstitutionScoped, db.Model):
    __tablename__ = "survey_staff_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(80))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_template.id"))
    size: Mapped[int] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    department: Mapped[Department] = relationship()
    template: Mapped[SurveyTemplate] = relationship()
    tokens: Mapped[list[StaffSurveyToken]] = relationship(back_populates="batch", order_by="StaffSurveyToken.id")

    @property
    def audit_label(self) -> str:
        return self.label


class StaffSurveyToken(InstitutionScoped, db.Model):
    """A single-use ticket. Responses never point back at it, so answers stay anonymous."""

    __tablename__ = "survey_staff_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("survey_staff_batch.id"), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    batch: Mapped[StaffSurveyBatch] = relationship(back_populates="tokens")

    @property
    def expires_at(self) -> datetime:
        """A ticket works as long as its batch does."""
        return self.batch.expires_at
