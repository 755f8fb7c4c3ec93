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

A staff notice's subject and body are ``Text``s, made by ``notice_text`` from a message id and its
parameters: each is its words in Chinese (a ``str``, what the backend and the outbound channels send and
what the in-app list stores), and keeps the message ids and parameters it was made of, so that the in-app
list shows it again in each reader's language (``render_text``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from flask import Flask, current_app, url_for
from flask_babel import force_locale, gettext

from core.privacy import mask_address

log = logging.getLogger(__name__)

# The language a notice is written in: what the outbound channels send and the in-app list stores.
NOTICE_LOCALE = "zh_Hans"


# Texts: a notice's words, in Chinese and again in each reader's language ---------------------------

# A part of a text: literal words (a case number, a list of places), or a message id with its parameters.
Part: TypeAlias = "str | tuple[str, dict[str, Any]]"


class Text(str):
    """A staff notice's subject or body: its words in Chinese (NOTICE_LOCALE), as a ``str``, and the ``parts``
    they were made of, to render them again in another language.

    Made by ``notice_text`` (one message) and by ``+``: a Text plus a ``str``, or a ``str`` plus a Text, is a
    Text (``notice_text(...) + " " + place``). Anything else a ``str`` method makes of it is a plain ``str``.
    """

    __slots__ = ("parts",)
    parts: tuple[Part, ...]

    def __new__(cls, parts: Iterable[Part]) -> Text:
        merged: list[Part] = []
        for part in parts:
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            elif not isinstance(part, str) or part:
                merged.append(part if isinstance(part, str) else (part[0], _checked(part[1])))
        with force_locale(NOTICE_LOCALE):
            words = _render(merged)
        return _made(words, tuple(merged))

    @classmethod
    def message(cls, msgid: str, **params: Any) -> Text:
        """A text of one message whose id Babel finds elsewhere (``notice_text`` for one it is to extract)."""
        return cls([(msgid, params)])

    def __add__(self, other: str) -> Text:
        if not isinstance(other, str):
            return NotImplemented
        return Text(self.parts + _parts_of(other))

    def __radd__(self, other: str) -> Text:
        if not isinstance(other, str):
            return NotImplemented
        return Text(_parts_of(other) + self.parts)

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles keep the parts (and the Chinese words)
        return _made, (str(self), self.parts)

    def to_json(self) -> list[Any]:
        """The parts as the in-app list stores them: literal words as strings, messages as [msgid, params], a
        parameter that is a text as {"text": its parts}."""
        return [part if isinstance(part, str) else [part[0], {name: {"text": value.to_json()}
                                                              if isinstance(value, Text) else value
                                                              for name, value in part[1].items()}]
                for part in self.parts]


def notice_text(msgid: str, **params: Any) -> Text:
    """A notice's subject or body (or a part of one): ``notice_text("投诉 %(number)s 将于 %(date)s 到期",
    number=..., date=...)``. Babel extracts the msgid (``-k notice_text``); the parameters are JSON values (a
    date as its ISO string) or Texts (a word to translate too: ``dept=notice_text("未分派")``)."""
    return Text.message(msgid, **params)


def render_text(stored: Any) -> str:
    """Stored parts (``Text.to_json``) in the current locale; raises ValueError when they are not parts, and
    KeyError, TypeError or ValueError when a message and its parameters no longer fit (the caller falls back
    on the words it stored)."""
    return _render(_parts_from_json(stored))


def _made(words: str, parts: tuple[Part, ...]) -> Text:
    text = str.__new__(Text, words)
    text.parts = parts
    return text


def _parts_of(words: str) -> tuple[Part, ...]:
    return words.parts if isinstance(words, Text) else (str(words),)


def _checked(params: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, Text) or value is None or isinstance(value, bool | int | float):
            checked[name] = value
        elif isinstance(value, str):
            checked[name] = str(value)
        else:  # a date, a lazy string, a row: the caller says how it reads
            raise TypeError(f"a notice text's parameter {name!r} is a {type(value).__name__}, not a JSON value "
                            "or a Text")
    return checked


def _render(parts: Iterable[Part]) -> str:
    words = []
    for part in parts:
        if isinstance(part, str):
            words.append(part)
            continue
        msgid, params = part
        values = {name: _render(value.parts) if isinstance(value, Text) else value for name, value in params.items()}
        words.append(gettext(msgid, **values))
    return "".join(words)


def _parts_from_json(stored: Any) -> list[Part]:
    if not isinstance(stored, list):
        raise ValueError("not a list of parts")
    parts: list[Part] = []
    for part in stored:
        if isinstance(part, str):
            parts.append(part)
            continue
        if not (isinstance(part, list) and len(part) == 2 and isinstance(part[0], str) and isinstance(part[1], dict)):
            raise ValueError("a part is neither words nor [msgid, params]")
        params: dict[str, Any] = {}
        for name, value in part[1].items():
            if isinstance(value, dict):
                if set(value) != {"text"}:
                    raise ValueError("a parameter is neither a JSON value nor a text")
                value = _made("", tuple(_parts_from_json(value["text"])))
            elif not (value is None or isinstance(value, str | bool | int | float)):
                raise ValueError("a parameter is neither a JSON value nor a text")
            params[name] = value
        parts.append((part[0], params))
    return parts


# Messages -----------------------------------------------------------------------------------------

@dataclass
class Message:
    recipients: list[str]          # usernames, or addresses for external backends
    subject: str                   # a Text for a staff notice, shown in each reader's language
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
