"""The to-do list on a staff member's home page: what waits on this user now.

Computed on each visit, never stored: each feature registers a provider (``register_todo``) that reads
its own queues — the same queries as its pages — and says what the user has to do in an institution
(an officer: cases to triage, 重办 requests to decide, replies to approve; a handler: cases to answer,
rectifications they own; a nurse: follow-up calls due). Items with nothing to do are left out.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from organisation.models import Institution, StaffUser


@dataclass
class TodoRow:
    """One thing on a to-do item, when the item lists them (a case, a request)."""

    text: str
    url: str
    note: str = ""
    urgent: bool = False


@dataclass
class TodoItem:
    label: Any
    count: int
    url: str
    urgent: bool = False
    rows: list[TodoRow] = field(default_factory=list)
    order: int = 100


Provider = Callable[[StaffUser, Institution], Iterable[TodoItem]]


def register_todo(app: Flask, provider: Provider) -> None:
    """Add a feature's to-do provider: ``provider(user, institution)`` yields TodoItems (counts may be 0)."""
    app.extensions.setdefault("todo_providers", []).append(provider)


def todo_for(user: StaffUser, institution: Institution) -> list[TodoItem]:
    """Everything waiting on ``user`` in ``institution``, urgent first, then in the providers' order."""
    items = [item for provider in current_app.extensions.get("todo_providers", [])
             for item in provider(user, institution) if item.count > 0]
    return sorted(items, key=lambda item: (not item.urgent, item.order))
