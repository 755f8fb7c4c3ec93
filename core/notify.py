"""Outbound notifications through a pluggable backend.

``NOTIFIER_BACKEND`` selects one: ``log`` (default: writes who was told what,
never message bodies that might hold personal data), ``memory`` (keeps
messages in the app, for tests and demos), or a dotted path to a callable
``send(message: Message) -> None`` for an SMS gateway or mail relay.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

from flask import current_app, url_for

from core.privacy import mask_address

log = logging.getLogger(__name__)


@dataclass
class Message:
    recipients: list[str]          # usernames, or addresses for external backends
    subject: str
    body: str
    kind: str = "info"
    link: str | None = None
    meta: dict = field(default_factory=dict)


def _log_backend(message: Message) -> None:
    log.info("notify kind=%s to=%s subject=%s", message.kind, ",".join(mask_address(r) for r in message.recipients),
             message.subject)


def _memory_backend(message: Message) -> None:
    current_app.extensions.setdefault("notify_outbox", []).append(message)


BACKENDS: dict[str, Callable[[Message], None]] = {"log": _log_backend, "memory": _memory_backend}


def backend() -> Callable[[Message], None]:
    name = current_app.config.get("NOTIFIER_BACKEND", "log")
    if name in BACKENDS:
        return BACKENDS[name]
    module, _, attr = name.rpartition(".")
    return getattr(import_module(module), attr)


def send(message: Message) -> None:
    """Deliver one message; raises if the backend fails so that the job can retry."""
    if message.recipients:
        backend()(message)


def link(endpoint: str, **values) -> str | None:
    """An absolute link to a staff page for a message; None in a job when no SERVER_NAME is configured."""
    try:
        return url_for(endpoint, _external=True, **values)
    except RuntimeError:  # no request and no SERVER_NAME: the message goes without a link
        return None


def sms_signature(sender: str) -> str:
    """The signature Chinese SMS gateways require at the start of a text: 【sender】."""
    return f"【{sender}】"


def send_to_person(address: str, subject: str, body: str, *, kind: str, channel: str,
                   meta: dict | None = None) -> None:
    """Send to a patient's or complainant's own phone number or e-mail address (PIPL: personal data).

    The one way a feature writes to a member of the public: the address goes to the backend as
    given and nowhere else (the log backend writes it masked), and never into ``meta``.
    """
    if not address:
        raise ValueError("no address to send to")
    send(Message(recipients=[address], subject=subject, body=body, kind=kind,
                 meta={**(meta or {}), "channel": channel}))


def outbox() -> list[Message]:
    """Messages kept by the memory backend."""
    return current_app.extensions.setdefault("notify_outbox", [])
