"""Organisation: regions, institutions, departments, touchpoints, staff and login."""
from __future__ import annotations

from flask import Flask

from organisation.models import Role


def init_app(app: Flask) -> None:
    from core.extensions import login_manager
    from organisation import auth, cli, services, views
    from organisation.nav import nav_context, register_core_nav

    login_manager.user_loader(services.load_user)
    login_manager.unauthorized_handler(auth.unauthorized)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.before_request(auth.enforce_password_change)
    app.context_processor(nav_context)
    register_core_nav(app)
    cli.init_app(app)
    from organisation import models

    register_label_enums(app, models.RegionLevel, models.InstitutionLevel, models.InstitutionGrade,
                         models.InstitutionCategory, models.DepartmentKind, models.TouchpointKind, models.Role)
    app.jinja_env.globals["enum_label"] = enum_label
    app.jinja_env.filters["role_label"] = lambda value: Role(value).label


def register_label_enums(app: Flask, *classes, **named) -> None:
    """Make LabelledEnum classes available to templates' enum_label() by class name
    (or by the keyword name given, where two features use the same class name)."""
    registry = app.extensions.setdefault("label_enums", {})
    for name, cls in [(cls.__name__, cls) for cls in classes] + list(named.items()):
        if registry.get(name, cls) is not cls:
            raise ValueError(f"two label enums are registered as {name!r}; register one under another name")
        registry[name] = cls


def enum_label(enum_name: str, value: str):
    """The translated label of a stored enum value, for templates."""
    from flask import current_app

    try:
        return current_app.extensions["label_enums"][enum_name](value).label
    except (KeyError, ValueError):
        return value
