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
from zxcvbn import zxcvbn

MIN_LENGTH = 12
# zxcvbn's score (0–4): 3 means about 10^8 guesses or more, out of reach of an online guesser who is slowed down
# (organisation/throttle.py) and costly offline against scrypt. It catches what a list cannot: repeats
# ("passwordpassword"), keyboard walks ("q1w2e3r4t5y6"), sequences and dates.
MIN_STRENGTH = 3
# Words of this product that a guesser tries with a hospital's accounts.
PRODUCT_WORDS = ("tingjian", "听见", "demo", "yiyuan", "hospital")
# Passwords published with the product (README): never a password anyone chooses.
PUBLISHED_PASSWORDS = frozenset({"demo2026tingjian"})
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


def is_published(password: str | None) -> bool:
    """The demo's password, or one a character or digit away from it ("Demo2027tingjian")."""
    if not password:
        return False
    folded = re.sub(r"\d+", "#", password.strip().casefold().rstrip("!.?~*#@"))
    return any(folded == re.sub(r"\d+", "#", known) for known in PUBLISHED_PASSWORDS)


def made_of_common_pieces(password: str) -> bool:
    """Two or three common passwords run together, with at most a few characters besides
    ("woaini1314woaini", "zhangsan123456"): as easy to guess as one of them."""
    text = re.sub(r"\s+", "", password.lower())
    known = common_passwords()
    pieces = 0
    while text and pieces < 4:
        found = max((text[i:j] for i in range(len(text)) for j in range(i + 5, min(len(text), i + 24) + 1)
                     if text[i:j] in known), key=len, default="")
        if not found:
            break
        text = text.replace(found, "", 1)
        pieces += 1
    return 2 <= pieces <= 3 and len(text) < 4


def too_easy_to_guess(password: str, user_words: list[str]) -> bool:
    """Under MIN_STRENGTH by zxcvbn's estimate, with the user's names and the product's words as known words."""
    words = [w for w in user_words if w] + list(PRODUCT_WORDS)
    return zxcvbn(password[:100], user_inputs=words)["score"] < MIN_STRENGTH


def password_problems(password: str, *, username: str = "", display_name: str = "") -> list[str]:
    """Why a new password is too weak; empty when it is acceptable."""
    problems = []
    lowered = password.lower()
    # Runs of spaces count as one (ASVS 2.1.1): "a  b" is no longer than "a b".
    if len(re.sub(r"\s+", " ", password)) < MIN_LENGTH:
        problems.append(gettext("密码至少需要 %(n)d 个字符。", n=MIN_LENGTH))
    if is_published(password):
        problems.append(gettext("这是随软件公开的演示密码（或其变形），任何人都知道，请换一个。"))
    elif is_common(password) or made_of_common_pieces(password):
        problems.append(gettext("这是常见密码或其简单变形，很容易被猜中，请换一个。"))
    elif len(password) >= MIN_LENGTH and too_easy_to_guess(password, [username, display_name]):
        problems.append(gettext("密码太容易被猜中（重复、键盘顺序、连续字符、日期或常见词加数字），请换一个更随意的。"))
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
