"""Complaints: one-stop intake, routing, working-day deadlines, replies, rectification, ledger."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Blueprints, the view modules' navigation and case-page sections, label enums, periodic jobs."""
    from complaints import (
        audit_labels,
        demo,
        models,
        tasks,
        views_calendar,
        views_cases,  # noqa: F401 - its routes
        views_intake,
        views_ledger,
        views_lookup,  # noqa: F401 - its routes
        views_outcomes,
        views_queues,
        views_remedies,
        views_settings,
        views_todo,
    )
    from complaints.blueprints import admin_bp, public_bp, staff_bp
    from complaints.workflow import actor_name
    from core import notify
    from core.audit import register_audit_labels
    from core.enums import register_label_enums
    from core.extensions import csrf
    from core.tasks import QUEUE_HIGH, register_periodic

    csrf.exempt(public_bp)  # public forms carry signed form tokens (as the patient survey pages do)
    app.register_blueprint(staff_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(admin_bp)
    register_label_enums(app, models.Channel, models.Status, models.DeclineReason, models.PauseReason,
                         models.ReplyStatus, models.RectificationStatus, models.RefundStatus, models.DayKind,
                         models.YearStatus, models.CaseRole, models.ExtensionStatus, models.Relation,
                         models.Satisfaction, models.ReopenStatus, models.ReplyVia, models.DeadlineRule)
    app.jinja_env.globals["complaint_actor_name"] = actor_name
    notify.register_kinds(app, tasks.NOTICE_KINDS)
    register_audit_labels(app, actions=audit_labels.ACTIONS, targets=audit_labels.TARGETS, keys=audit_labels.KEYS,
                          values=audit_labels.VALUES, actors=audit_labels.ACTORS)
    app.extensions.setdefault("demo_seeders", []).append(demo.seed_demo)  # flask seed-demo
    # Each view module adds its navigation entries and case-page sections (views_cases has routes only).
    for module in (views_calendar, views_intake, views_queues, views_outcomes, views_remedies, views_ledger,
                   views_settings, views_todo):
        module.init_app(app)

    # Periodic jobs (flask scheduler enqueues them; cron strings are Beijing time, see core.config).
    # Deadlines: working hours only, and the sweep itself skips days that are not working days.
    register_periodic(app, tasks.sweep_deadlines, name="complaints-deadlines", cron="5 8-17 * * *")
    register_periodic(app, tasks.sweep_feedback_links, name="complaints-feedback-links", cron="*/5 * * * *")
    # Emergency notices owed (the job queued after a registration did not run): every minute, on the high queue.
    register_periodic(app, tasks.sweep_emergency_notices, name="complaints-emergency-notices", cron="* * * * *",
                      queue=QUEUE_HIGH)
    # Complainants' names and phones past the retention period: nightly, after the survey purge (02:30).
    register_periodic(app, tasks.purge_complainant_contacts_job, name="complaints-contact-purge", cron="45 2 * * *")
    # Public safety reports waiting for their grouped notice to the officers on duty: every minute, high.
    register_periodic(app, tasks.sweep_safety_reports, name="complaints-safety-reports", cron="* * * * *",
                      queue=QUEUE_HIGH)
    # Expired pending files of intake forms and records of expired used form tokens: hourly.
    register_periodic(app, tasks.clean_intake, name="complaints-intake-cleanup", cron="17 * * * *")


def case_section(app: Flask, template: str, order: int = 100) -> None:
    """Add a partial template to the case page (replies, rectification, refunds …)."""
    sections = app.extensions.setdefault("complaint_case_sections", [])
    sections.append((order, template))
    sections.sort()
