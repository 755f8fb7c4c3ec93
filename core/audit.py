"""The audit trail: one entry per state change, written by record(), and how the audit log names it."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask import Flask, current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.enums import LabelledEnum
from core.extensions import Model, db
from core.i18n import format_local_datetime


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
    data in ``data``: it is shown to admins and kept for years. The action, the
    target type, the keys of ``data`` and a system actor get their labels from the
    package's audit_labels module (register_audit_labels, below).
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


# How the audit log names things ------------------------------------------------
#
# An entry stores identifiers (``complaint.accept``, ``{"channel": "walk_in"}``); the log shows them
# by their labels. Each feature declares, once, in its init_app, the labels of the actions it
# records, of its target types, of the keys of its entries' data and of the values those keys
# take (a LabelledEnum, a {value: label} mapping or a function of the value), for a key, or for
# a key of one target type:
#
#     register_audit_labels(app, actions={"complaint.register": _l("登记投诉")},
#                           targets={"complaint": _l("投诉案件")}, keys={"channel": _l("渠道")},
#                           values={("complaint", "channel"): Channel})
#
# Whatever has no label is shown as stored: names, notes and codes that people typed stay as
# they typed them. An action ending in ``.update`` keeps ``{field: [old, new]}``.

ValueLabels = type[LabelledEnum] | Mapping[str, Any] | Callable[[str], Any]
Named = str | tuple[str, str]  # a data key, or (target type, data key)

_KINDS = ("actions", "targets", "keys", "values", "actors")
_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)")
# What the shell itself records: entries about no particular row, and actors that are not people.
CORE_TARGETS = {"system": _l("系统")}
CORE_ACTORS = {"system": _l("系统"), "cli": _l("系统管理员（命令行）")}


def _msgid(label: Any) -> Any:
    """What a label says before translation (a lazy string's message id), to compare two declarations."""
    return getattr(label, "_args", (label,))[0] if getattr(label, "_args", None) else label


def register_audit_labels(app: Flask, *, actions: Mapping[str, Any] | None = None,
                          targets: Mapping[str, Any] | None = None, keys: Mapping[Named, Any] | None = None,
                          values: Mapping[Named, ValueLabels] | None = None,
                          actors: Mapping[str, Any] | None = None) -> None:
    """Declare how the audit log shows a feature's actions, target types, data keys and values, and the
    system actors it records (a job's name; ``api`` also labels ``api:<token>``).

    A name may be declared by several features only with the same label.
    """
    registry = app.extensions.setdefault("audit_labels", {kind: {} for kind in _KINDS})
    for kind, labels in zip(_KINDS, (actions, targets, keys, values, actors), strict=True):
        for name, label in (labels or {}).items():
            known = registry[kind].get(name, label)
            if known is not label and _msgid(known) != _msgid(label):
                raise ValueError(f"the audit {kind} label of {name!r} is declared twice, differently")
            registry[kind][name] = label


def audit_labels(kind: str) -> dict[Any, Any]:
    """The labels of one kind (``actions``, ``targets``, ``keys``, ``values``, ``actors``) the app declared."""
    return current_app.extensions.get("audit_labels", {}).get(kind, {})


def action_label(action: str) -> str:
    return str(audit_labels("actions").get(action, action))


def target_type_label(target_type: str) -> str:
    return str(audit_labels("targets").get(target_type, target_type))


def actor_name(label: str) -> str:
    """A staff member's username as it is; a system actor (``cli``, ``api:tj_ab12``) by its label."""
    actors = audit_labels("actors")
    if label in actors:
        return str(actors[label])
    prefix, colon, rest = label.partition(":")
    if colon and prefix in actors:
        return str(actors[prefix]) + gettext("：") + rest
    return label


def _for(kind: str, target_type: str, key: str) -> Any:
    labels = audit_labels(kind)
    return labels.get((target_type, key), labels.get(key))


def key_label(target_type: str, key: str) -> str:
    return str(_for("keys", target_type, key) or key)


def show_value(value: Any, labels: ValueLabels | None = None, target_type: str = "") -> str:
    """One stored value as the log shows it: a known code by its label, a moment in local time, else as stored."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    if isinstance(value, list | tuple):
        return gettext("、").join(show_value(item, labels, target_type) for item in value) if value else "—"
    if isinstance(value, dict):
        return gettext("；").join(key_label(target_type, k) + gettext("：")
                                  + show_value(v, _for("values", target_type, k), target_type)
                                  for k, v in value.items())
    if not isinstance(value, str):
        return str(value)
    if _ISO_MOMENT.fullmatch(value):
        try:
            return format_local_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if labels is None:
        return value
    if isinstance(labels, type) and issubclass(labels, LabelledEnum):
        return str(labels(value).label) if labels.is_value(value) else value
    if isinstance(labels, Mapping):
        return str(labels.get(value, value))
    return str(cast(Callable[[str], Any], labels)(value) or value)


@dataclass(frozen=True)
class EntryView:
    """One audit entry as the log shows it, in the request's language."""

    entry: AuditEntry
    actor: str
    action: str
    target: str
    details: list[tuple[str, str]]


def describe(entry: AuditEntry) -> EntryView:
    target = target_type_label(entry.target_type)
    if entry.target_id:
        target += f" #{entry.target_id}"
    if entry.target_label:
        target += f" · {entry.target_label}"
    changes = entry.action.endswith(".update")
    details = []
    for key, value in (entry.data or {}).items():
        labels = _for("values", entry.target_type, key)
        if changes and isinstance(value, list | tuple) and len(value) == 2:
            old, new = (show_value(side, labels, entry.target_type) for side in value)
            shown = f"{old} → {new}"
        else:
            shown = show_value(value, labels, entry.target_type)
        details.append((key_label(entry.target_type, key), shown))
    return EntryView(entry, actor_name(entry.actor_label), action_label(entry.action), target, details)


def init_app(app: Flask) -> None:
    register_audit_labels(app, targets=CORE_TARGETS, actors=CORE_ACTORS)
