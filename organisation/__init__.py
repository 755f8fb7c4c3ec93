"""Organisation: regions, institutions, departments, touchpoints, staff and login."""
from __future__ import annotations

from flask import Flask

from core.audit import register_audit_labels
from core.enums import register_label_enums
from organisation import audit_labels
from organisation.models import Role


def init_app(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    from core import notify
    from core.extensions import login_manager
    from core.tasks import QUEUE_HIGH, register_periodic
    from organisation import (  # noqa: F401 - routes
        auth,
        cli,
        notifications,
        services,
        tasks,
        totp,
        views,
        views_account,
        views_audit,
        views_notify,
        views_staff,
        views_units,
    )
    from organisation.nav import nav_context, register_core_nav

    login_manager.user_loader(auth.load_user)
    login_manager.unauthorized_handler(auth.unauthorized)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.before_request(auth.check_session)
    app.before_request(auth.enforce_password_change)
    app.context_processor(nav_context)
    register_core_nav(app)
    cli.init_app(app)
    from organisation import models

    register_label_enums(app, models.RegionLevel, models.InstitutionLevel, models.InstitutionGrade,
                         models.InstitutionCategory, models.DepartmentKind, models.TouchpointKind, models.Role,
                         models.SmtpSecurity, models.DeliveryChannel)
    # Every staff notice of every feature is kept in the recipients' in-app lists and delivered to the
    # institution's WeCom / DingTalk / e-mail channels by these jobs (organisation.notifications).
    notify.register_recorder(app, tasks.record_notice)
    notify.register_kinds(app, {"test": _l("测试消息")})
    register_periodic(app, tasks.sweep_deliveries, name="notify-deliveries", cron="* * * * *", queue=QUEUE_HIGH)
    register_periodic(app, tasks.purge_sessions, name="staff-sessions-purge", cron="35 3 * * *")
    app.jinja_env.filters["role_label"] = lambda value: Role(value).label
    # A notice's subject and body in the reader's language, wherever a list of notices is shown.
    app.jinja_env.globals["notice_shown"] = notifications.shown
    app.jinja_env.globals["may_enrol_two_factor"] = totp.may_enrol
    register_audit_labels(app, actions=audit_labels.ACTIONS, targets=audit_labels.TARGETS, keys=audit_labels.KEYS,
                          values=audit_labels.VALUES, actors=audit_labels.ACTORS)
