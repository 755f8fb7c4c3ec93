"""Slowing password guessing down without letting anyone lock an account (core.backoff's growing delays).

A failed sign-in counts against the username and against the client's address. Past
LOGIN_FREE_FAILURES failures in a row for a username (LOGIN_FREE_FAILURES_PER_ADDRESS for an
address, which a hospital's staff may share), each try has to wait: LOGIN_FIRST_DELAY seconds,
then twice as long after each further failure, up to LOGIN_MAX_DELAY. Unknown usernames are
counted exactly like real ones, so the answers tell nothing about which exist.

A stranger failing on purpose could keep a username waiting for ever; so a browser where that
username signed in before (it carries a signed "known device" cookie, see organisation.auth) is
counted on a key of its own, which only its own failures slow down, and the address's count does not slow it
either (a stranger at the hospital's shared address). The address's count forgets
after an hour, the username's after a day; a success clears the username's.

The current-password check of the change-password page and the two-factor code are guarded the
same way, per user.
"""
from __future__ import annotations

from flask import current_app

from core import backoff, signing

ADDRESS_FORGET = 3600
USER_FORGET = 24 * 3600


def _policy(free_setting: str, forget: int) -> backoff.Policy:
    config = current_app.config
    return backoff.Policy(free=int(config[free_setting]), first=float(config["LOGIN_FIRST_DELAY"]),
                          cap=float(config["LOGIN_MAX_DELAY"]), forget=forget)


def _username(username: str) -> str:
    return signing.hash_value("login-username", (username or "").strip().lower())[:32]


def _login_checks(username: str, address: str, device: str | None) -> list[tuple[backoff.Policy, str]]:
    user_key = f"login:user:{_username(username)}"
    if device:
        user_key = f"login:device:{device}:{_username(username)}"
    return [(_policy("LOGIN_FREE_FAILURES", USER_FORGET), user_key),
            (_policy("LOGIN_FREE_FAILURES_PER_ADDRESS", ADDRESS_FORGET),
             f"login:address:{signing.hash_value('login-address', address)[:32]}")]


def login_wait(username: str, address: str, device: str | None) -> int:
    """Seconds this sign-in attempt must wait before its password is even looked at; 0: look now.

    A browser where this username signed in before waits only for its own failures: a stranger at the same
    address (a hospital's staff share one behind NAT) neither slows it by the username's count nor by the
    address's. Its failures still count against the address."""
    checks = _login_checks(username, address, device)
    return backoff.wait_seconds(checks[:1] if device else checks)


def login_failed(username: str, address: str, device: str | None) -> None:
    backoff.record_failure(_login_checks(username, address, device))


def login_succeeded(username: str, device: str | None) -> None:
    """The password was right: the username (and this browser's own count) starts again from nothing."""
    keys = [f"login:user:{_username(username)}"]
    if device:
        keys.append(f"login:device:{device}:{_username(username)}")
    backoff.clear(*keys)


def username_wait(username: str) -> int:
    """How long a sign-in with this username must wait now from a browser it never signed in on."""
    return backoff.wait_seconds(_login_checks(username, "", None)[:1])


def lift_username_delay(username: str) -> None:
    """An administrator lets the user try again at once (from any browser)."""
    backoff.clear(f"login:user:{_username(username)}")


# The current-password check and the two-factor code: per user, after a sign-in ----------------

PASSWORD_CHECK, SECOND_FACTOR = "password-check", "second-factor"


def _check(kind: str, user_id: int) -> list[tuple[backoff.Policy, str]]:
    return [(_policy("LOGIN_FREE_FAILURES", USER_FORGET), f"{kind}:{user_id}")]


def check_wait(kind: str, user_id: int) -> int:
    return backoff.wait_seconds(_check(kind, user_id))


def check_failed(kind: str, user_id: int) -> None:
    backoff.record_failure(_check(kind, user_id))


def check_passed(kind: str, user_id: int) -> None:
    backoff.clear(f"{kind}:{user_id}")
