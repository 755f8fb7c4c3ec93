"""Locale selection and the language switch."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, has_request_context, redirect, request, session
from flask_babel import format_datetime, get_locale

from core.security import safe_redirect_target

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    """The session's choice, else the browser's (any zh* is Simplified Chinese), else zh_Hans."""
    if not has_request_context():  # a job or a command: no session, no browser
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if isinstance(chosen, str) and chosen in languages:
        return chosen
    for lang, _quality in request.accept_languages:
        lang = lang.lower()
        if lang.startswith("zh"):
            return "zh_Hans"
        if lang.startswith("en") and "en" in languages:
            return "en"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def html_lang() -> str:
    return "zh-CN" if str(get_locale()).startswith("zh") else str(get_locale())


@bp.get("/lang/<code>")
def switch_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_redirect_target(request.args.get("next")) or "/")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["html_lang"] = html_lang
    app.jinja_env.globals["get_locale"] = get_locale
    register_filters(app)


def format_local_datetime(value, fmt: str = "yyyy-MM-dd HH:mm") -> str:
    """A UTC datetime shown in the hospital's time zone."""

    return format_datetime(value, fmt) if value else ""


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["datetime"] = format_local_datetime
