"""Notifications: to staff (in-app and outbound) and to members of the public.

A staff notice is one ``Message`` whose ``recipients`` are usernames. ``send`` hands it first to
the **recorder** a lower layer registered (``register_recorder``: organisation stores one in-app
notification per recipient in the caller's transaction, and queues the institution's outbound
channels — WeCom, DingTalk, e-mail — for after the commit), then to the configured backend. A
message with a ``key`` (the item it is about: ``complaint:12:reminder:2026-10-13``) reaches each
recipient once, however often the job that sends it runs: the recorder drops the recipients who
had it already.

``NOTIFIER_BACKEND`` selects the backend: ``log`` (default: writes who was told what, never message
bodies that might hold personal data), ``memory`` (keeps messages in the app, for tests and demos),
or a dotted path to a callable ``send(message: Message) -> None`` for an SMS gateway or mail relay.
``send_to_person`` writes to a complainant or patient through the backend alone (no recorder).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, url_for

from core.privacy import mask_address

log = logging.getLogger(__name__)



@dataclass
class Message:
    recipients: list[str]          # usernames, or addresses for external backends
    subject: str
    body: str
    kind: str = "info"
    link: str | None = None        # the staff page it is about: absolute when the app knows its address, else a path
    meta: dict = field(default_factory=dict)
    key: str | None = None         # the item it is about, so that a re-run job tells nobody twice


def _log_backend(message: Message) -> None:
    log.info("notify kind=%s to=%s subject=%s", message.kind, ",".join(mask_address(r) for r in message.recipients),
             message.subject)


def _memory_backend(message: Message) -> None:
    current_app.extensions.setdefault("notify_outbox", []).append(message)


BACKENDS: dict[str, Callable[[Message], None]] = {"log": _log_backend, "memory": _memory_backend}
Recorder = Callable[[Message], Message]


def backend() -> Callable[[Message], None]:
    name = current_app.config.get("NOTIFIER_BACKEND", "log")
    if name in BACKENDS:
        return BACKENDS[name]
    module, _, attr = name.rpartition(".")
    return getattr(import_module(module), attr)


def register_recorder(app: Flask, recorder: Recorder) -> None:
    """Let a lower layer keep staff notices (the in-app list): ``recorder(message)`` stores them and returns
    the message addressed to the recipients who had not had it yet."""
    app.extensions["notify_recorder"] = recorder


def send(message: Message) -> None:
    """Tell staff: record the notice for each recipient (in the caller's transaction, so a job that rolls back
    tells nobody), then hand it to the backend; raises if the backend fails so that the job can retry."""
    recorder: Recorder | None = current_app.extensions.get("notify_recorder")
    if recorder is not None and message.recipients:
        message = recorder(message)
    if message.recipients:
        backend()(message)


def link(endpoint: str, **values: Any) -> str:
    """The address of a staff page for a message: absolute under STAFF_BASE_URL, or when a request or SERVER_NAME
    gives the host; otherwise the path (a job on a worker that knows no address)."""
    path = page_path(endpoint, **values)
    base = current_app.config.get("STAFF_BASE_URL")
    if base:
        return base.rstrip("/") + path
    try:
        return url_for(endpoint, _external=True, **values)
    except RuntimeError:  # no request and no SERVER_NAME
        return path


def page_path(endpoint: str, **values: Any) -> str:
    """The path of a page, with or without a request (jobs build links too)."""
    try:
        return url_for(endpoint, **values)
    except RuntimeError:
        values = dict(values)
        anchor = values.pop("_anchor", None)
        root = current_app.config.get("APPLICATION_ROOT") or "/"
        path = current_app.url_map.bind("localhost", script_name=root).build(endpoint, values)
        return path + (f"#{anchor}" if anchor else "")


def local_path(address: str | None) -> str | None:
    """A message's link as a path on this site (what the in-app list stores): '/i/3/complaints/812'."""
    if not address:
        return None
    parts = urlsplit(address)
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return None
    return path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def is_absolute(address: str | None) -> bool:
    return bool(address) and urlsplit(address or "").scheme in ("http", "https")


def only_to(message: Message, recipients: list[str]) -> Message:
    """The same message for fewer recipients."""
    return replace(message, recipients=list(recipients))


# Kinds: a label for each kind of staff notice, for the in-app list ------------------------------

def register_kinds(app: Flask, labels: dict[str, Any]) -> None:
    """Name the kinds of notice a feature sends (``{"complaint_reminder": _l("到期提醒")}``)."""
    app.extensions.setdefault("notify_kinds", {}).update(labels)


def kind_label(kind: str) -> str:
    label = current_app.extensions.get("notify_kinds", {}).get(kind)
    return str(label) if label is not None else ""


# Members of the public -------------------------------------------------------------------------

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
    backend()(Message(recipients=[address], subject=subject, body=body, kind=kind,
                      meta={**(meta or {}), "channel": channel}))


def delivers(channel: str) -> bool:
    """Whether a text ("sms") or an e-mail ("email") to a member of the public really leaves the app.

    SMS_GATEWAY / EMAIL_GATEWAY say so explicitly; unset, every backend but ``log`` (which only writes a
    line) is taken to deliver: a dotted path of the hospital's own, or ``memory``, the tests' stand-in for one.
    """
    setting = current_app.config.get({"sms": "SMS_GATEWAY", "email": "EMAIL_GATEWAY"}[channel])
    if setting is not None:
        return bool(setting)
    return current_app.config.get("NOTIFIER_BACKEND", "log") != "log"


def outbox() -> list[Message]:
    """Messages kept by the memory backend."""
    return current_app.extensions.setdefault("notify_outbox", [])
