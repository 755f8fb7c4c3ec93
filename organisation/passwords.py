"""Password hashing, the password policy and generated initial passwords.

The policy follows OWASP ASVS 4.0 V2.1: a minimum length (12 characters), no composition rules
(no "must contain a digit"), and a check against passwords that guessers try first — a shipped
list of common ones (common_passwords.txt) — and against the user's own username and name.
"""
from __future__ import annotations

import re
import secrets
import string
from functools import lru_cache
from pathlib import Path

from flask_babel import gettext
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 12
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")
# A precomputed hash so that unknown usernames cost as much as known ones.
_DUMMY_HASH = None
# Digits and signs people put around a word ("Password2026!", "123woaini"); short letter prefixes before a
# digit run ("qq123456789", "abc1234567890"), and short letter suffixes after one ("123456789abc").
_AROUND = re.compile(r"^[\d\W_]+|[\d\W_]+$")
_SHORT_LETTERS_BEFORE_DIGITS = re.compile(r"^[a-z]{1,3}(?=\d)")
_SHORT_LETTERS_AFTER_DIGITS = re.compile(r"(?<=\d)[a-z]{1,3}$")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; without a hash (an unknown username) a dummy is checked, so both cost the same."""
    global _DUMMY_HASH
    if password_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(8))
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(password_hash, password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with COMMON_PASSWORDS.open(encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip() and not line.startswith("#"))


def is_common(password: str) -> bool:
    """On the list of common passwords, alone or with a few digits, signs or letters around its core."""
    lowered = password.strip().lower()
    candidates = {lowered, _AROUND.sub("", lowered), _SHORT_LETTERS_BEFORE_DIGITS.sub("", lowered),
                  _SHORT_LETTERS_AFTER_DIGITS.sub("", lowered)}
    known = common_passwords()
    return any(len(c) >= 4 and c in known for c in candidates)


def password_problems(password: str, *, username: str = "", display_name: str = "") -> list[str]:
    """Why a new password is too weak; empty when it is acceptable."""
    problems = []
    lowered = password.lower()
    # Runs of spaces count as one (ASVS 2.1.1): "a  b" is no longer than "a b".
    if len(re.sub(r"\s+", " ", password)) < MIN_LENGTH:
        problems.append(gettext("密码至少需要 %(n)d 个字符。", n=MIN_LENGTH))
    if is_common(password):
        problems.append(gettext("这是常见密码或其简单变形，很容易被猜中，请换一个。"))
    if username and username.strip().lower() in lowered:
        problems.append(gettext("密码不能包含用户名。"))
    name = re.sub(r"\s+", "", display_name or "").lower()
    if len(name) >= 2 and name in re.sub(r"\s+", "", lowered):
        problems.append(gettext("密码不能包含您的姓名。"))
    if len(set(password)) < 4:
        problems.append(gettext("密码过于简单。"))
    return problems


def generate_initial_password() -> str:
    """A readable random password that passes the policy (no 0/O, 1/l)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(14))
        if not is_common(candidate) and len(set(candidate)) >= 4:
            return candidate
