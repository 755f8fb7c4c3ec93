"""Staff sign-in sessions kept on the server, so that the server can end them.

Flask keeps its session in a signed cookie, and a copy of that cookie stays valid for as long as
the cookie says. So the cookie carries only a random token; the session holds while this token's
row in ``staff_session`` is open. Ending the row ends the session at once, whoever kept a copy of
the cookie: logging out ends this browser's session; a password change or reset, a change of
roles, a deactivation or a two-factor reset end all of the user's sessions. A session also ends
after SESSION_IDLE_TIMEOUT seconds without a request and, however busy, PERMANENT_SESSION_LIFETIME
seconds after sign-in.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update

from core.audit import record
from core.db import utcnow
from core.extensions import db
from organisation.models import StaffSession, StaffUser

# last_seen_at is written at most this often, so a busy user costs one UPDATE a minute, not one per page;
# idle expiry is therefore exact to this many seconds.
TOUCH_SECONDS = 60
# Ended and expired rows are kept this long after they can no longer be used (the purge job drops them).
KEEP_ENDED = timedelta(days=30)

# Why a session ended (staff_session.end_reason).
LOGOUT, IDLE, LIFETIME = "logout", "idle", "lifetime"
PASSWORD_CHANGED, PASSWORD_RESET, ROLES_CHANGED = "password", "password_reset", "roles"
DEACTIVATED, SECOND_FACTOR_RESET = "deactivated", "totp_reset"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def idle_timeout() -> timedelta:
    return timedelta(seconds=int(current_app.config["SESSION_IDLE_TIMEOUT"]))


def lifetime() -> timedelta:
    return current_app.permanent_session_lifetime


def start_session(user: StaffUser, *, second_factor_due: bool = False, now: datetime | None = None) -> str:
    """Open a session for ``user`` and return its token (for the cookie; only its hash is stored)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    db.session.add(StaffSession(user_id=user.id, token_hash=_hash(token), created_at=now, last_seen_at=now,
                                second_factor_due=second_factor_due))
    db.session.flush()
    return token


@dataclass
class Resumed:
    user: StaffUser | None
    ended: str | None = None        # IDLE or LIFETIME when this request found the session expired
    touched: bool = False           # last_seen_at was moved on: the caller commits


def open_row(token: str | None) -> StaffSession | None:
    """The open session row of a token, or None."""
    if not token:
        return None
    return db.session.scalar(select(StaffSession).where(StaffSession.token_hash == _hash(token),
                                                        StaffSession.ended_at.is_(None)))


def resume_session(token: str | None, user_id: int, now: datetime | None = None) -> Resumed:
    """The user of an open, fully signed-in session that has neither idled out nor outlived its lifetime.

    An expired session is ended (and audited) here; a live one has its last request time moved on.
    """
    now = now or utcnow()
    row = open_row(token)
    if row is None or row.user_id != user_id or row.second_factor_due:
        return Resumed(None)
    reason = IDLE if now - row.last_seen_at > idle_timeout() else LIFETIME if now - row.created_at > lifetime() \
        else None
    if reason is not None:
        _end(row, reason, now)
        record("session", "staff.session_expired", row.user, {"reason": reason})
        return Resumed(None, ended=reason, touched=True)
    user = row.user
    if not user.active or (user.institution is not None and not user.institution.active):
        return Resumed(None)  # a deactivated institution's staff lose access at once
    touched = now - row.last_seen_at >= timedelta(seconds=TOUCH_SECONDS)
    if touched:
        row.last_seen_at = now
    return Resumed(user, touched=touched)


def pending_second_factor(token: str | None, now: datetime | None = None,
                          within: timedelta = timedelta(minutes=5)) -> StaffSession | None:
    """The session of a user who gave the right password a moment ago and owes the two-factor code."""
    row = open_row(token)
    if row is None or not row.second_factor_due or (now or utcnow()) - row.created_at > within:
        return None
    return row


def complete_second_factor(row: StaffSession, now: datetime | None = None) -> None:
    """The code was right: the session becomes a signed-in one."""
    row.second_factor_due = False
    row.last_seen_at = now or utcnow()


def _end(row: StaffSession, reason: str, now: datetime) -> None:
    row.ended_at = now
    row.end_reason = reason


def end_session(token: str | None, reason: str = LOGOUT, now: datetime | None = None) -> bool:
    """End one session (logging out); False when there was none open."""
    row = open_row(token)
    if row is None:
        return False
    _end(row, reason, now or utcnow())
    return True


def end_user_sessions(user: StaffUser, reason: str, now: datetime | None = None) -> int:
    """End every open session of ``user``; returns how many."""
    if user.id is None:
        return 0
    result = db.session.execute(
        update(StaffSession).where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now or utcnow(), end_reason=reason).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge_sessions(now: datetime | None = None) -> int:
    """Delete rows that ended, or could no longer be used, more than KEEP_ENDED ago; returns how many."""
    now = now or utcnow()
    cutoff = now - KEEP_ENDED
    result = db.session.execute(delete(StaffSession).where(or_(
        StaffSession.ended_at < cutoff,
        StaffSession.last_seen_at < cutoff - idle_timeout(),
        StaffSession.created_at < cutoff - lifetime()))
        .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
