"""The one phone-number rule: what people type, turned into the number we store.

Patients, complainants, nurses and import files write numbers in many ways: with spaces or
dashes (139-0000-1234, 139 0000 1234), with the country code (+86, 0086, 86), in full-width
digits from a Chinese keyboard (１３９…), with the area code in brackets ((0755)12345678).
Every form and import takes them through ``normalise_phone``, so a number is stored one way
and compares equal wherever it came from.

Stored form: digits only. A mobile number is 11 digits starting with 1; a landline is the
area code (0 and 2–3 digits) followed by 7–8 digits; where a form allows it
(``local=True``), a local landline of 7–8 digits without the area code.
"""
from __future__ import annotations

import re
import unicodedata

from flask_babel import lazy_gettext as _l

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}[2-9]\d{6,7}$")
LOCAL_RE = re.compile(r"^[2-9]\d{6,7}$")
# Separators people type between groups of digits (after NFKC: full-width forms are ASCII by then).
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212.()（）/]")
MAX_TYPED_LENGTH = 40

PHONE_MESSAGE = _l("电话号码格式不正确，请填写 11 位手机号或带区号的固话。")


class InvalidPhone(ValueError):
    """What was typed is not a Chinese mobile or landline number; the message is for the user."""

    def __init__(self) -> None:
        super().__init__(str(PHONE_MESSAGE))


def normalise_phone(text: str | None, *, local: bool = False) -> str | None:
    """The digits of a Chinese mobile or landline number typed any usual way; None when nothing was typed.

    Raises InvalidPhone for anything else. ``local`` also accepts a landline without its area code.
    """
    raw = unicodedata.normalize("NFKC", text or "").strip()
    if not raw:
        return None
    if len(raw) > MAX_TYPED_LENGTH:
        raise InvalidPhone()
    digits = _SEPARATORS.sub("", raw)
    if digits.startswith("+"):
        digits = digits[1:]
        if not digits.startswith("86"):
            raise InvalidPhone()  # a foreign number: no gateway here can text it
        digits = digits[2:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits.isascii() or not digits.isdigit():
        raise InvalidPhone()
    if MOBILE_RE.match(digits) or LANDLINE_RE.match(digits) or (local and LOCAL_RE.match(digits)):
        return digits
    raise InvalidPhone()
