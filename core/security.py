"""Security headers on every response."""
from __future__ import annotations

import secrets

from flask import Flask, Response, g

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


def init_app(app: Flask) -> None:
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
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
        return response
