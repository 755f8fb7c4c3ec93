"""Optional two-factor sign-in for administrators: a time-based one-time code (TOTP, RFC 6238) from an
authenticator app, asked for after the password.

Only platform, regional and institution admins may enrol (their accounts reach the most data). Enrolment
stores a new secret and shows it once, as a QR code, on the response page; it counts only after the first
right code. Each code is accepted once (the time step of the last accepted code is kept). A user who lost
their phone is helped by an administrator who may manage their account: resetting the two factors ends the
user's sessions and is audited.
"""
from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pyotp
from pyotp import OTPVerificationError

from core.audit import record
from core.db import utcnow
from organisation import sessions
from organisation.models import Role, StaffUser

ELIGIBLE_ROLES = (Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN)
ISSUER = "Tingjian"


def may_enrol(user: StaffUser) -> bool:
    return user.has_role(*ELIGIBLE_ROLES)


def enabled(user: StaffUser) -> bool:
    return user.totp_enabled_at is not None and bool(user.totp_secret)


def start_enrolment(user: StaffUser) -> str:
    """Give the user a new secret, pending until a first right code confirms it; returns the secret."""
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = None
    user.totp_last_step = None
    record(user, "staff.totp_setup", user)
    return user.totp_secret


def provisioning_uri(user: StaffUser) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(user.totp_secret or "").provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as inline SVG markup (qrcode, as the touchpoint posters draw theirs)."""
    import qrcode  # type: ignore[import-untyped]  # no stubs installed (survey/qr.py is not type-checked either)
    import qrcode.image.svg  # type: ignore[import-untyped]

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    code.add_data(uri)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buffer)
    svg = buffer.getvalue().decode()
    return svg[svg.index("<svg"):]  # the XML declaration has no place inside an HTML page


def check_code(user: StaffUser, code: str, now: datetime | None = None) -> bool:
    """A right code, not used before (a step up to 30 s either way is allowed for clock drift)."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    if not user.totp_secret or len(code) != 6:
        return False
    try:
        step = pyotp.TOTP(user.totp_secret).verify_and_get_timecode(code, for_time=now or utcnow(), valid_window=1)
    except OTPVerificationError:
        return False
    if user.totp_last_step is not None and step <= user.totp_last_step:
        return False  # replayed
    user.totp_last_step = step
    return True


def confirm_enrolment(user: StaffUser, code: str, now: datetime | None = None) -> bool:
    """Switch two-factor sign-in on once the app shows a right code."""
    if user.totp_secret is None or enabled(user) or not check_code(user, code, now):
        return False
    user.totp_enabled_at = now or utcnow()
    record(user, "staff.totp_enable", user)
    return True


def switch_off(user: StaffUser, code: str, now: datetime | None = None) -> bool:
    """The user switches two-factor sign-in off, with a right code."""
    if not enabled(user) or not check_code(user, code, now):
        return False
    _clear(user)
    record(user, "staff.totp_disable", user)
    return True


def reset(user: StaffUser, *, actor: Any) -> StaffUser:
    """An administrator removes a user's second factor (a lost phone): the user signs in with the password
    alone and may enrol again; every session of theirs ends."""
    _clear(user)
    sessions.end_user_sessions(user, sessions.SECOND_FACTOR_RESET)
    record(actor, "staff.totp_reset", user)
    return user


def _clear(user: StaffUser) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
