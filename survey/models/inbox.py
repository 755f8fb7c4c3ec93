"""Ratings received from QR pages, committed at once and turned into responses by a job.

The patient's POST does the least work that makes the rating durable: it
validates the answers, writes one narrow row here and commits. survey.inbox
turns rows into responses in batches (flags, scores, alerts), inline in the
embedded mode and every few seconds on an RQ worker in production. Rows live
for seconds, so everything but the submission id sits in one JSON payload.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime
from core.extensions import db


@dataclass(frozen=True)
class InboxContext:
    """Where and how a QR rating was given, as the POST saw it: the ``meta`` of an inbox row."""

    institution_id: int
    code_id: int
    touchpoint_id: int
    department_id: int | None
    version_id: int
    fill_seconds: float | None
    form_problem: str | None      # from tokens.read_form_token
    device_hash: str
    ip_hash: str

    def to_json(self) -> dict[str, Any]:
        # Every field is a plain value: a shallow copy of the instance dict, not dataclasses.asdict,
        # whose recursive deep copy cost the rating POST as much as the rest of the payload.
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InboxContext:
        """Read a stored meta; a missing field raises KeyError (the row is then kept with its error)."""
        return cls(**{f.name: data[f.name] for f in fields(cls)})


class SurveyInbox(db.Model):
    __tablename__ = "survey_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[str] = mapped_column(String(40), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    # {"meta": InboxContext.to_json(), "form": {"q_<CODE>": [values], "contact_phone": [phone]}}
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)

    @property
    def meta(self) -> InboxContext:
        return InboxContext.from_json(self.payload["meta"])
