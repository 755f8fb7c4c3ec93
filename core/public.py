"""What every page a patient or complainant sees shares: its public address, the device cookie,
the client's network, the submission id, and the one-message notice page (expired links, closed
codes, 429).

Patients never log in. A random cookie tells one phone from another for the anti-abuse flags
and the rate limits; the network prefix groups a hospital's shared Wi-Fi. Both are only ever
stored as keyed hashes (``client_hashes``).
"""
from __future__ import annotations

import re
import secrets

from flask import current_app, make_response, render_template, request, url_for
from werkzeug.wrappers import Response

from core import signing
from core.ratelimit import retry_after_header

DEVICE_COOKIE = "tj_d"
DEVICE_COOKIE_AGE = 365 * 24 * 3600

# A client-made id that makes a retry or a double tap store nothing twice. Pages issue 32 hex
# characters; anything of this alphabet and length is accepted (it never reaches the database
# otherwise: a NUL byte, for one, would be a PostgreSQL error).
SUBMISSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,40}$")


def public_url(endpoint: str, **values) -> str:
    """The absolute address of a public page, as printed on a QR code or slip or sent in a text message.

    The PUBLIC_BASE_URL setting followed by the page's path when it is set (the address patients
    reach, whatever host the staff pages are served from); otherwise url_for's external address.
    """
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def valid_submission_id(value: str | None) -> bool:
    """Whether ``value`` may be a submission id: 16 to 40 letters, digits, '_' or '-'."""
    return bool(SUBMISSION_ID_RE.match(value or ""))


def new_submission_id() -> str:
    """A fresh submission id for a form being served."""
    return secrets.token_hex(16)


def device_id() -> str:
    """The device cookie, if the client sent a well-formed one; else ''."""
    value = request.cookies.get(DEVICE_COOKIE, "")
    return value if len(value) == 32 and value.isalnum() else ""


def device_key() -> str:
    """Rate-limit key: the device cookie, else the address."""
    return "d:" + (device_id() or (request.remote_addr or "-"))


def ip_prefix() -> str:
    """The /24 (IPv4) or /48 (IPv6) of the client: shared Wi-Fi counts as one network."""
    addr = request.remote_addr or ""
    if ":" in addr:
        return ":".join(addr.split(":")[:3])
    return ".".join(addr.split(".")[:3])


def client_hashes() -> tuple[str, str]:
    """Keyed hashes of the device cookie ('' without one) and of the client's network."""
    device = signing.hash_value("device", device_id()) if device_id() else ""
    return device, signing.hash_value("ip", ip_prefix())


def with_device_cookie(response: Response) -> Response:
    """Give a new device its cookie; a public page is never cached (it carries a form token)."""
    if not device_id():
        response.set_cookie(DEVICE_COOKIE, secrets.token_hex(16), max_age=DEVICE_COOKIE_AGE, httponly=True,
                            samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    response.headers["Cache-Control"] = "no-store"
    return response


def public_page(template: str, status: int = 200, **context) -> Response:
    """A patient-facing page: rendered, with the device cookie and no caching."""
    return with_device_cookie(make_response(render_template(template, **context), status))


def render_notice(title: str, message: str, status: int, *, back: str | None = None) -> Response:
    """The one-message page patients and complainants see instead of a staff error page."""
    return public_page("public/notice.html", status, title=title, message=message, back=back)


def too_many_requests(error: Exception, title: str, message: str) -> Response:
    """The patient's own 429 page, saying when to try again (Retry-After)."""
    response = render_notice(title, message, 429)
    response.headers["Retry-After"] = retry_after_header(error)
    return response
