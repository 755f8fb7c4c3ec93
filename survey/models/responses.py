"""Survey responses and their answers."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import EnumText, InstitutionScoped, UTCDateTime, utcnow
from core.enums import LabelledEnum
from core.extensions import db
from survey.models.templates import TemplateVersion


class Channel(LabelledEnum):
    """How a response was collected. Modes give different scores: reports keep them apart."""
    TOUCHPOINT_QR = "touchpoint_qr", _l("扫码评价")
    DISCHARGE_LINK = "discharge_link", _l("出院链接")
    PHONE_FOLLOWUP = "phone_followup", _l("电话回访")
    STAFF_TOKEN = "staff_token", _l("职工问卷")


class SurveyResponse(InstitutionScoped, db.Model):
    __tablename__ = "survey_response"
    __table_args__ = (
        Index("ix_survey_response_inst_submitted", "institution_id", "submitted_at"),
        Index("ix_survey_response_touchpoint_submitted", "touchpoint_id", "submitted_at"),
        # The anti-abuse flags (submission._flags) look for this device's or this
        # network's recent ratings at a touchpoint: found by index even in a flood.
        Index("ix_survey_response_touchpoint_device", "touchpoint_id", "device_hash", "submitted_at"),
        Index("ix_survey_response_touchpoint_network", "touchpoint_id", "ip_hash", "submitted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The client's id for this submission: a retry or double tap finds it and
    # stores nothing new.
    submission_id: Mapped[str] = mapped_column(String(40), unique=True)
    template_version_id: Mapped[int] = mapped_column(ForeignKey("survey_template_version.id"), index=True)
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 20))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoint.id"))
    code_id: Mapped[int | None] = mapped_column(ForeignKey("survey_touchpoint_code.id"))
    # Phone answers name the interviewer; self-completed ones leave it empty.
    interviewer_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fill_seconds: Mapped[float | None] = mapped_column(Float)
    overall_score: Mapped[float | None] = mapped_column(Float)
    comment: Mapped[str] = mapped_column(Text, default="")
    # Salted hashes only: enough to spot repeats, useless to identify anyone.
    device_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    ip_hash: Mapped[str] = mapped_column(String(64), default="")
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    sentiment: Mapped[float | None] = mapped_column(Float)

    version: Mapped[TemplateVersion] = relationship()
    answers: Mapped[list[SurveyAnswer]] = relationship(back_populates="response", cascade="all, delete-orphan",
                                                         order_by="SurveyAnswer.id")

    def answer(self, code: str) -> SurveyAnswer | None:
        return next((a for a in self.answers if a.item_code == code), None)


class SurveyAnswer(db.Model):
    __tablename__ = "survey_answer"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_response.id", ondelete="CASCADE"), index=True)
    item_code: Mapped[str] = mapped_column(String(40), index=True)
    # The chosen option value(s): one value, a JSON list for multiple choice, or free text.
    value: Mapped[Any] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    not_applicable: Mapped[bool] = mapped_column(Boolean, default=False)

    response: Mapped[SurveyResponse] = relationship(back_populates="answers")


class ContactRequest(InstitutionScoped, db.Model):
    """A respondent who asked to be contacted: the one place a survey keeps a phone number."""

    __tablename__ = "survey_contact_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_response.id", ondelete="CASCADE"), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
