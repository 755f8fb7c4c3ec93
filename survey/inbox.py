"""Accept QR ratings fast, process them after: the high-volume path of the product.

accept_rating() is all the patient's POST does: check the answers against the
(cached, immutable) definition and write one inbox row in a one-statement
transaction. process_inbox() turns rows into responses with their flags,
scores and alerts, in batches, and deletes them; it is idempotent (the submission id is unique in both
tables) and safe to run in several workers at once (rows are claimed with
SKIP LOCKED where the database has it).
"""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from core.extensions import db
from core.tasks import enqueue, job_logger
from survey import versioning
from survey.models import Channel, InboxContext, SurveyInbox
from survey.qr import CodeInfo
from survey.submission import Context, SubmissionError, check_submission, submit_response

log = job_logger(__name__)
BATCH = 500
MAX_ATTEMPTS = 5  # a row that fails this often waits for an operator (see last_error)


def accept_rating(info: CodeInfo, definition: dict[str, Any], submission_id: str, form: MultiDict, *,
                  form_problem: str | None, fill_seconds: float | None, device_hash: str, ip_hash: str) -> bool:
    """Validate a QR rating and write it to the inbox; False when this submission was already received."""
    check_submission(definition, submission_id, form.get, form.getlist)
    meta = InboxContext(institution_id=info.institution_id, code_id=info.code_id, touchpoint_id=info.touchpoint_id,
                        department_id=info.department_id, version_id=info.version_id, fill_seconds=fill_seconds,
                        form_problem=form_problem, device_hash=device_hash, ip_hash=ip_hash)
    payload = {
        "meta": meta.to_json(),
        "form": {key: form.getlist(key) for key in form if key.startswith("q_") or key == "contact_phone"},
    }
    return _store({"submission_id": submission_id, "payload": payload})


_INSERT = insert(SurveyInbox.__table__).values(
    submission_id=bindparam("submission_id"), payload=bindparam("payload", type_=SurveyInbox.__table__.c.payload.type))


def _store(row: dict[str, Any]) -> bool:
    """Insert one inbox row; False when its submission id is there already (a double tap, a retry)."""
    bind = db.session.get_bind()
    if not isinstance(bind, Engine):
        # The session works inside a transaction its caller holds (a test's, for one): join
        # it; the request has no other work in it, so a duplicate rolls it all back and no
        # savepoint is paid for. The caller's commit makes the row durable.
        try:
            db.session.connection().execute(_INSERT, row)
        except IntegrityError:
            db.session.rollback()
            return False
        return True
    # One statement in a transaction of its own: one round trip to the database instead of
    # BEGIN, INSERT and COMMIT, and the row is durable when execute() returns.
    try:
        with bind.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(_INSERT, row)
    except IntegrityError:
        return False
    return True


def pending(submission_id: str) -> SurveyInbox | None:
    return db.session.scalar(select(SurveyInbox).where(SurveyInbox.submission_id == submission_id))


def process_inbox(limit: int = BATCH, *, submission_id: str | None = None) -> int:
    """Turn inbox rows into responses (oldest first); returns how many rows were taken."""
    stmt = (select(SurveyInbox).where(SurveyInbox.attempts < MAX_ATTEMPTS)
            .order_by(SurveyInbox.id).limit(limit))
    if submission_id is not None:
        stmt = stmt.where(SurveyInbox.submission_id == submission_id)
    rows = db.session.scalars(stmt.with_for_update(skip_locked=True)).all()
    created, alert_ids, done = 0, [], []
    for row in rows:
        meta = row.meta
        context = Context(institution_id=meta.institution_id, channel=Channel.TOUCHPOINT_QR,
                          version_id=meta.version_id, definition=versioning.published_definition(meta.version_id),
                          touchpoint_id=meta.touchpoint_id, department_id=meta.department_id,
                          code_id=meta.code_id, form_problem=meta.form_problem,
                          fill_seconds=meta.fill_seconds, device_hash=meta.device_hash, ip_hash=meta.ip_hash)
        data = MultiDict([(key, value) for key, values in row.payload["form"].items() for value in values])
        try:
            stored = submit_response(context, row.submission_id, data.get, data.getlist,
                                     received_at=row.received_at)
        except SubmissionError as exc:  # answers were checked on receipt: only a bug gets here
            row.attempts += 1
            row.last_error = str(exc)[:500]
            log.error("inbox row %s could not be processed: %s", row.id, exc)
            continue
        created += int(stored.created)
        if stored.alert_id is not None:
            alert_ids.append(stored.alert_id)
        done.append(row.id)
    if done:
        # One DELETE for the batch, without matching it against the session's objects:
        # per row, that matching made a batch quadratic in its size.
        db.session.execute(delete(SurveyInbox).where(SurveyInbox.id.in_(done))
                           .execution_options(synchronize_session=False))
    db.session.commit()
    notify_alerts(alert_ids)
    if rows and submission_id is None:
        log.info("inbox: %d rows, %d responses created", len(rows), created)
    return len(rows)


def notify_alerts(alert_ids: list[int]) -> None:
    """Queue the notice of each alert just committed; the alert sweep re-drives any that could not be queued."""
    if not alert_ids:
        return
    from survey import tasks

    for alert_id in alert_ids:
        try:
            enqueue(tasks.notify_alert, alert_id)
        except Exception:  # the alert is committed: the sweep sends it within minutes
            log.exception("could not queue the notice of alert %s", alert_id)


def drain_inbox() -> int:
    """Periodic job: process everything waiting, batch by batch; returns the rows taken."""
    total = 0
    while taken := process_inbox():
        total += taken
    return total


def processes_inline() -> bool:
    """Whether ratings are processed within the request (no Redis, or JOBS_INLINE)."""
    return current_app.extensions.get("redis") is None or bool(current_app.config.get("JOBS_INLINE"))
