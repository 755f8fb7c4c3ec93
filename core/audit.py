"""The audit trail: one entry per state change, written by record()."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model, db


class AuditEntry(Model):
    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_target", "target_type", "target_id"),
        Index("ix_audit_entry_institution_created", "institution_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Nullable: jobs and the command line act without a staff member.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(120))
    institution_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("institution.id"))
    action: Mapped[str] = mapped_column(String(80), index=True)
    target_type: Mapped[str] = mapped_column(String(60))
    target_id: Mapped[str | None] = mapped_column(String(60))
    target_label: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def _describe_target(target: Any) -> tuple[str, str | None, str, int | None]:
    if target is None:
        return "system", None, "", None
    if isinstance(target, tuple):
        target_type, target_id = target
        return str(target_type), None if target_id is None else str(target_id), "", None
    target_type = getattr(target, "__tablename__", type(target).__name__.lower())
    target_id = getattr(target, "id", None)
    label = str(getattr(target, "audit_label", "") or "")
    institution_id = getattr(target, "institution_id", None)
    if target_type == "institution":
        institution_id = target_id
    return target_type, None if target_id is None else str(target_id), label[:200], institution_id


def record(actor: Any, action: str, target: Any = None, data: dict[str, Any] | None = None) -> AuditEntry:
    """Write one audit entry for a state change; the caller's commit makes it durable.

    ``actor`` is a staff user or a string naming a system actor (a job, the CLI);
    ``target`` is a model instance or a ``(type, id)`` tuple. Never put personal
    data in ``data``: it is shown to admins and kept for years.
    """
    if target is not None and not isinstance(target, tuple) and getattr(target, "id", None) is None:
        # A new row needs its id (and, for an institution, its institution id) before we point at it.
        db.session.flush()
    target_type, target_id, label, institution_id = _describe_target(target)
    actor_id = getattr(actor, "id", None)
    if institution_id is None:
        institution_id = getattr(actor, "institution_id", None)
    actor_label = getattr(actor, "username", None) or str(actor or "system")
    entry = AuditEntry(
        actor_id=actor_id,
        actor_label=actor_label[:120],
        institution_id=institution_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=label,
        data=data or {},
    )
    db.session.add(entry)
    return entry
