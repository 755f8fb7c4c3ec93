"""Password hashing, policy and generated initial passwords."""
from __future__ import annotations

import re
import secrets
import string

from flask_babel import gettext
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 10
# A precomputed hash so that unknown usernames cost as much as known ones.
_DUMMY_HASH = None


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(password_hash: str | None, password: str) -> bool:
    global _DUMMY_HASH
    if password_hash is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(8))
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(password_hash, password)


def password_problems(password: str, *, username: str = "") -> list[str]:
    """Why a new password is too weak; empty when it is acceptable."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(gettext("密码至少需要 %(n)d 个字符。", n=MIN_LENGTH))
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        problems.append(gettext("密码需同时包含字母和数字。"))
    if username and username.lower() in password.lower():
        problems.append(gettext("密码不能包含用户名。"))
    if len(set(password)) < 4:
        problems.append(gettext("密码过于简单。"))
    return problems


def generate_initial_password() -> str:
    """A readable random password that passes the policy (no 0/O, 1/l)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(12))
        if re.search(r"[A-Za-z]", candidate) and re.search(r"\d", candidate):
            return candidate
