"""Ratings received from QR pages, committed at once and turned into responses by a job.

The patient's POST does the least work that makes the rating durable: it
validates the answers, writes one narrow row here and commits. survey.inbox
turns rows into responses in batches (flags, scores, alerts), inline in the
embedded mode and every few seconds on an RQ worker in production. Rows live
for seconds, so everything but the submission id sits in one JSON payload.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime
from core.extensions import db


class SurveyInbox(db.Model):
    __tablename__ = "survey_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[str] = mapped_column(String(40), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    # {"meta": {institution_id, code_id, touchpoint_id, department_id, version_id,
    #           fill_seconds, form_problem, device_hash, ip_hash},
    #  "form": {"q_<CODE>": [values], "contact_phone": [phone]}}
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)

    @property
    def meta(self) -> dict[str, Any]:
        return self.payload["meta"]
