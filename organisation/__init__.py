"""Organisation: regions, institutions, departments, touchpoints, staff and login."""
from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from organisation.models import Role


def init_app(app: Flask) -> None:
    from core.extensions import login_manager
    from organisation import auth, cli, services, views
    from organisation.nav import nav_context, register_core_nav

    login_manager.user_loader(services.load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("请先登录。")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.before_request(auth.enforce_password_change)
    app.context_processor(nav_context)
    register_core_nav(app)
    cli.init_app(app)
    app.jinja_env.globals["enum_label"] = enum_label
    app.jinja_env.filters["role_label"] = lambda value: Role(value).label


def enum_label(enum_name: str, value: str):
    """The translated label of a stored enum value, for templates."""
    from organisation import models

    try:
        return getattr(models, enum_name)(value).label
    except ValueError:
        return value
