"""Complaints: one-stop intake, routing, working-day deadlines, replies, rectification, ledger."""
from __future__ import annotations

from importlib import import_module

from flask import Flask

# View modules add their routes to the blueprints in complaints.blueprints
# and may define init_app(app) for nav entries, periodic jobs and case-page sections.
VIEW_MODULES = ("views_calendar", "views_intake", "views_cases", "views_outcomes", "views_ledger", "views_settings")


def init_app(app: Flask) -> None:
    from complaints import models
    from complaints.blueprints import admin_bp, public_bp, staff_bp
    from core.enums import register_label_enums
    from core.extensions import csrf

    modules = [m for m in (_optional(name) for name in VIEW_MODULES) if m is not None]
    csrf.exempt(public_bp)  # public forms carry signed form tokens (as the patient survey pages do)
    app.register_blueprint(staff_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(admin_bp)
    register_label_enums(app, models.Channel, models.Status, models.DeclineReason, models.PauseReason,
                         models.ReplyStatus, models.RectificationStatus, models.RefundStatus, models.DayKind,
                         models.YearStatus, models.CaseRole, models.ExtensionStatus, models.Relation,
                         models.Satisfaction, models.ReopenStatus, models.ReplyVia)
    from complaints.workflow import actor_name

    app.jinja_env.globals["complaint_actor_name"] = actor_name
    for module in modules:
        if hasattr(module, "init_app"):  # nav entries, periodic jobs, case-page sections
            module.init_app(app)


def _optional(name: str):
    try:
        return import_module(f"complaints.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"complaints.{name}":
            raise
        return None


def case_section(app: Flask, template: str, order: int = 100) -> None:
    """Add a partial template to the case page (replies, rectification, refunds …)."""
    sections = app.extensions.setdefault("complaint_case_sections", [])
    sections.append((order, template))
    sections.sort()
