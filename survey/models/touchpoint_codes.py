"""The QR codes printed at touchpoints. Rotating a code retires the old one."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import InstitutionScoped, UTCDateTime, utcnow
from core.extensions import db
from organisation.models import Touchpoint
from survey.models.templates import SurveyTemplate


class TouchpointCode(InstitutionScoped, db.Model):
    __tablename__ = "survey_touchpoint_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    touchpoint_id: Mapped[int] = mapped_column(ForeignKey("touchpoint.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_template.id"))
    # Random, unguessable, short enough for a small QR code; the URL also
    # carries an HMAC of it so that a mistyped or forged code is told apart.
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    touchpoint: Mapped[Touchpoint] = relationship()
    template: Mapped[SurveyTemplate] = relationship()

    @property
    def audit_label(self) -> str:
        return f"{self.touchpoint.name} · {self.code}"

    @property
    def active(self) -> bool:
        return self.retired_at is None
