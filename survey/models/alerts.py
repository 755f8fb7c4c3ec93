"""Service-recovery alerts raised by low ratings or requests for contact."""
from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import EnumText, InstitutionScoped, UTCDateTime, utcnow
from core.enums import LabelledEnum
from core.extensions import db
from organisation.models import Department, StaffUser, Touchpoint
from survey.models.responses import SurveyResponse


class AlertStatus(LabelledEnum):
    OPEN = "open", _l("待处理")
    ACKNOWLEDGED = "acknowledged", _l("已确认")
    CLOSED = "closed", _l("已关闭")


class RecoveryAlert(InstitutionScoped, db.Model):
    __tablename__ = "survey_recovery_alert"
    __table_args__ = (Index("ix_survey_recovery_alert_inst_status", "institution_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_response.id"), unique=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoint.id"))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[AlertStatus] = mapped_column(EnumText(AlertStatus, 16), default=AlertStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    note: Mapped[str] = mapped_column(Text, default="")

    response: Mapped[SurveyResponse] = relationship()
    department: Mapped[Department | None] = relationship()
    touchpoint: Mapped[Touchpoint | None] = relationship()
    acknowledged_by: Mapped[StaffUser | None] = relationship(foreign_keys=[acknowledged_by_id])
    closed_by: Mapped[StaffUser | None] = relationship(foreign_keys=[closed_by_id])
