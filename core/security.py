"""Security headers on every response, and no caching of anything but static files."""
from __future__ import annotations

import secrets

from flask import Flask, Response, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'{style_nonce}; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def csp_nonce() -> str:
    """A per-response nonce for one inline <style> block (patient pages inline their CSS
    to stay within three requests); no inline script is ever allowed."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def safe_redirect_target(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None.

    Browsers drop tabs and newlines and read a backslash as a slash, so "/",
    a tab, then "/evil.example" would leave the site although it does not start
    with "//"; targets with control characters or backslashes are refused too.
    """
    if not target or any(ord(ch) < 0x20 or ch in "\\\x7f" for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    return target


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signer built once per secret key.

    Flask builds it on every request, and itsdangerous test-serialises a value
    while doing so: a cost paid on every page, the patient's rating included.
    """

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = app.extensions.get("tingjian.session_signer")
        if cached is None or cached[0] != keys:
            cached = app.extensions["tingjian.session_signer"] = (keys, super().get_signing_serializer(app))
        return cached[1]


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        # Flask documents wrapping wsgi_app this way; its type is a method, so mypy refuses the assignment.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies,  # type: ignore[method-assign]
                                x_host=proxies)
    hsts = app.config.get("HSTS")
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        nonce = g.get("csp_nonce")
        response.headers.setdefault("Content-Security-Policy",
                                    CSP.format(style_nonce=f" 'nonce-{nonce}'" if nonce else ""))
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if hsts:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if request.endpoint != "static":
            # Staff pages show patients' names and phones, and patient pages carry form tokens and, after a
            # lookup, a complaint's progress: no browser (a shared ward PC's) or proxy may keep a copy. This
            # overrides a view's own weaker header (send_file's "no-cache"). Static files keep their caching.
            response.headers["Cache-Control"] = "no-store"
        return response
