"""Signed codes and tokens for patient-facing URLs and forms.

Secrets are derived from the app's SECRET_KEY with a purpose string, so a
token made for one purpose never validates for another.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, insert_unless_present, utcnow
from core.extensions import Model, db

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: codes get typed from posters


def _signing_key() -> str:
    return current_app.config.get("LINK_SIGNING_KEY") or current_app.config["SECRET_KEY"]


def _key(purpose: str) -> bytes:
    return _derive(_signing_key(), purpose)


@lru_cache(maxsize=64)
def _derive(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def signature(purpose: str, value: str, length: int = 8) -> str:
    mac = hmac.new(_key(purpose), value.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().rstrip("=").lower()[:length]


def verify(purpose: str, value: str, sig: str, length: int = 8) -> bool:
    return hmac.compare_digest(signature(purpose, value, length), (sig or "").lower())


def new_code(length: int = 8) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def signed_id(purpose: str, row_id: int) -> str:
    """A URL token for a row id: ``<id>-<hmac>``; it cannot be guessed from the id."""
    return f"{row_id}-{signature(purpose, str(row_id), 12)}"


def parse_signed_id(purpose: str, token: str) -> int | None:
    raw_id, _, sig = (token or "").partition("-")
    if not raw_id.isdigit() or not verify(purpose, raw_id, sig, 12):
        return None
    return int(raw_id)


def resolve_link(purpose: str, token: str, model: type[Any], *, used: str, expires: str,
                 now: datetime | None = None, lock: bool = False) -> tuple[Any, str | None]:
    """The row a one-time link names, and why it cannot be used: 'invalid', 'used', 'expired' or None.

    ``used`` names the row's timestamp set when the link was used, ``expires`` its expiry
    moment; ``lock`` takes the row for update (two tabs submitting one link at once: the
    second waits, then finds it used).
    """
    row_id = parse_signed_id(purpose, token)
    if row_id is None:
        return None, "invalid"
    stmt = select(model).where(model.id == row_id)
    row = db.session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        return None, "invalid"
    if getattr(row, used) is not None:
        return row, "used"
    if (now or utcnow()) >= getattr(row, expires):
        return row, "expired"
    return row, None


def hash_value(purpose: str, value: str) -> str:
    """A keyed hash for values we must recognise but never read back (devices, addresses, references)."""
    return hmac.new(_key(purpose), value.encode(), hashlib.sha256).hexdigest()


def form_serializer() -> URLSafeTimedSerializer:
    return _form_serializer(_signing_key())


@lru_cache(maxsize=8)
def _form_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="survey-form")


def issue_form_token(context: str) -> str:
    """A token bound to the page it was served on, carrying the time it was issued."""
    return form_serializer().dumps({"c": context, "n": secrets.token_hex(4)})


def read_form_token(token: str, context: str, max_age: int) -> tuple[str | None, Any]:
    """Return (problem, issued_at): problem is None, 'token_invalid' or 'token_expired'."""
    try:
        data, issued_at = form_serializer().loads(token or "", max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        return "token_expired", None
    except BadSignature:
        return "token_invalid", None
    if not isinstance(data, dict) or data.get("c") != context:
        return "token_invalid", None
    return None, issued_at


class UsedFormToken(Model):
    """A single-use form token that was used: its keyed hash, kept until the token would have expired anyway."""

    __tablename__ = "used_form_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def _used_hash(token: str) -> str:
    return hash_value("used-form-token", token)


def form_token_used(token: str) -> bool:
    """Whether a single-use form token was used already."""
    return db.session.get(UsedFormToken, _used_hash(token)) is not None


def use_form_token(token: str) -> bool:
    """Mark a (valid) form token as used, in the caller's transaction; False if it was used already.

    The row commits with what the form stored, so a refused or failed submission leaves the
    token usable; two submissions of one token at once meet on the primary key, and the
    second waits for the first and then gets False (core.db.insert_unless_present).
    """
    return insert_unless_present(db.session(), UsedFormToken, ["token_hash"], {"token_hash": _used_hash(token)})


def forget_used_form_tokens(max_age: int, now: datetime | None = None) -> int:
    """Drop the records of tokens used more than ``max_age`` seconds ago: they have expired by now. Returns how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=max_age)
    result = db.session.execute(delete(UsedFormToken).where(UsedFormToken.used_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
