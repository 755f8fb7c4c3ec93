"""Surveys: templates, QR touchpoints, instant ratings, discharge follow-up, staff survey."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext


def init_app(app: Flask) -> None:
    """Blueprints (the view modules add their routes to them), label enums, demo data, commands, periodic jobs."""
    from flask_babel import lazy_gettext as _l

    from core import notify
    from core.audit import register_audit_labels
    from core.enums import register_label_enums
    from core.extensions import csrf
    from core.tasks import QUEUE_HIGH, register_periodic, register_watchdog

    # The staff view modules are imported for the routes they add to staff_bp and patient.bp.
    from survey import (  # noqa: F401
        api,
        audit_labels,
        inbox,
        models,
        patient,
        staff_views,
        tasks,
        views_codes,
        views_followup,
        views_staff_survey,
        views_todo,
    )
    from survey.blueprints import staff_bp

    # Patient forms carry a signed, time-stamped form token instead of a
    # session-bound CSRF token: patients have no session to protect.
    csrf.exempt(patient.bp)
    app.register_blueprint(patient.bp)
    app.register_blueprint(staff_bp)
    csrf.exempt(api.bp)  # bearer-token JSON API: no cookie session, so no CSRF to protect against
    app.register_blueprint(api.bp)
    register_label_enums(app, models.AlertStatus, models.VersionStatus, models.Audience, models.FollowupOutcome,
                         SurveyChannel=models.Channel)
    register_audit_labels(app, actions=audit_labels.ACTIONS, targets=audit_labels.TARGETS, keys=audit_labels.KEYS,
                          values=audit_labels.VALUES, actors=audit_labels.ACTORS)
    app.extensions.setdefault("demo_seeders", []).append(seed_demo)
    app.cli.add_command(install_templates_command)
    register_survey_nav(app)
    views_todo.init_app(app)
    notify.register_kinds(app, {"survey_alert": _l("服务补救")})

    # Periodic jobs (flask scheduler enqueues them; cron strings are Beijing time, see core.config).
    register_periodic(app, tasks.drain_inbox, name="survey-inbox", interval=10, queue=QUEUE_HIGH)
    register_periodic(app, tasks.sweep_unnotified_alerts, name="survey-alert-sweep", cron="* * * * *")
    register_periodic(app, tasks.purge_contact_data_job, name="survey-contact-purge", cron="30 2 * * *")
    # Ratings must not depend on the scheduler alone (survey/inbox.py, "When nothing drains the inbox").
    register_watchdog(app, tasks.drain_if_stalled, name="survey-inbox")


def register_survey_nav(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    from organisation.nav import register_nav
    from organisation.scope import Permission, can

    def sees(permission):
        return lambda user, institution: can(user, permission, institution)

    register_nav(app, _l("满意度评价"), "survey_staff.overview", sees(Permission.VIEW_SURVEYS), order=20)
    register_nav(app, _l("评价明细"), "survey_staff.responses", sees(Permission.VIEW_SURVEYS), order=21)
    register_nav(app, _l("服务补救"), "survey_staff.alerts", sees(Permission.VIEW_SURVEYS), order=22)
    register_nav(app, _l("问卷管理"), "survey_staff.templates", sees(Permission.MANAGE_SURVEYS), order=40)
    register_nav(app, _l("评价设置"), "survey_staff.settings", sees(Permission.MANAGE_SURVEYS), order=49)
    register_nav(app, _l("出院随访"), "survey_staff.followup_calls", sees(Permission.FOLLOW_UP), order=30)
    register_nav(app, _l("随访率"), "survey_staff.followup_rates",
                 lambda u, i: can(u, Permission.FOLLOW_UP, i) or can(u, Permission.VIEW_SURVEYS, i), order=31)
    register_nav(app, _l("接口令牌"), "survey_staff.api_tokens", sees(Permission.MANAGE_SURVEYS), order=48)
    register_nav(app, _l("二维码"), "survey_staff.codes", sees(Permission.VIEW_SURVEYS), order=41)
    register_nav(app, _l("职工满意度"), "survey_staff.staff_results", sees(Permission.VIEW_SURVEYS), order=25)


def seed_demo() -> None:
    """Install the shipped templates and issue a QR code for every demo touchpoint."""
    from sqlalchemy import select

    from core.extensions import db
    from organisation.models import Touchpoint
    from survey import demo, qr, versioning

    versioning.install_builtin_templates(actor="seed-demo")
    for touchpoint in db.session.scalars(select(Touchpoint).where(Touchpoint.active.is_(True))):
        qr.ensure_code(touchpoint, actor="seed-demo")
    demo.seed_responses()
    demo.send_demo_notices()


@click.command("install-templates")
@with_appcontext
def install_templates_command() -> None:
    """Install or update the shipped survey templates (run after every upgrade)."""
    from core.extensions import db
    from survey import versioning

    templates = versioning.install_builtin_templates(actor="cli")
    db.session.commit()
    click.echo(f"{len(templates)} shipped templates are current.")
