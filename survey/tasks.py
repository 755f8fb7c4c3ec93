"""Survey jobs: alert notification, sweeps, personal-data purge. All idempotent."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, update

from core import notify
from core.db import utcnow
from core.extensions import db
from core.notify import Message, send
from core.tasks import QUEUE_HIGH, job_logger, try_enqueue
from organisation.models import Role, StaffUser
from organisation.services import staff_with_roles
from survey import discharges, inbox
from survey.models import RecoveryAlert

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = job_logger(__name__)


def alert_recipients(alert: RecoveryAlert) -> list[StaffUser]:
    """The department's handlers, then the institution's complaint officers."""
    handlers = [] if alert.department_id is None else staff_with_roles(
        alert.institution_id, Role.DEPARTMENT_HANDLER, departments=[alert.department_id])
    officers = staff_with_roles(alert.institution_id, Role.COMPLAINT_OFFICER)
    return handlers + [o for o in officers if o not in handlers]


def process_ratings(limit: int = inbox.BATCH, *, submission_id: str | None = None) -> int:
    """One batch of the rating inbox turned into responses, then its alerts' notices queued; returns rows taken."""
    processed = inbox.process_inbox(limit, submission_id=submission_id)
    notify_alerts(processed.alert_ids)
    return processed.taken


def process_while_stalled(submission_id: str) -> int:
    """While nothing drains the inbox (inbox.stalled): this rating, then a batch of the backlog; never raises.

    For the request that accepted the rating, after its commit: a failure here must not turn "received" into an
    error page (the rating waits in the inbox for the next try)."""
    try:
        return process_ratings(submission_id=submission_id) + process_ratings(inbox.STALL_BATCH)
    except Exception:
        log.exception("could not process ratings in the request; they wait in the inbox")
        db.session.rollback()
        return 0


def drain_inbox() -> int:
    """Periodic job: process every rating waiting in the inbox, batch by batch; returns the rows taken."""
    total = 0
    while taken := process_ratings():
        total += taken
    return total


def drain_if_stalled() -> int:
    """Watchdog of idle workers: drain the inbox when its job is not run (the scheduler is gone); returns the rows."""
    if not inbox.stalled():
        db.session.rollback()  # end the look-up's transaction: the worker keeps this session while idle
        return 0
    return drain_inbox()


def notify_alerts(alert_ids: list[int]) -> None:
    """Queue the notice of each alert just committed (high queue: service recovery is urgent); the alert sweep
    re-drives any that could not be queued."""
    for alert_id in alert_ids:
        try_enqueue(notify_alert, alert_id, queue=QUEUE_HIGH)  # committed: the sweep re-drives a failure


def notify_alert(alert_id: int) -> bool:
    """Tell the department about an alert once; a second run does nothing."""
    alert = db.session.get(RecoveryAlert, alert_id)
    if alert is None or alert.notified_at is not None:
        return False
    # Claim the alert in the database, not on the object read above: the sweep and the job queued at
    # submit time can run at once on two workers, and only one of them may send. A second claimant
    # waits on the row lock and then updates nothing; a failed send rolls the claim back.
    claimed = cast("CursorResult[Any]", db.session.execute(  # an UPDATE's result carries its row count
        update(RecoveryAlert).where(RecoveryAlert.id == alert_id, RecoveryAlert.notified_at.is_(None))
        .values(notified_at=utcnow()).execution_options(synchronize_session=False))).rowcount
    if not claimed:
        return False
    recipients = alert_recipients(alert)
    where = alert.touchpoint.name if alert.touchpoint else (alert.department.name if alert.department else "")
    subject = notify.notice_text("服务补救提醒：%(where)s 收到一条需要跟进的评价", where=where)
    body = notify.notice_text("请在“服务补救”中查看并处理。")
    link = _alert_link(alert)
    try:
        send(Message(recipients=[u.username for u in recipients], subject=subject, body=body, kind="survey_alert",
                     link=link, meta={"alert_id": alert.id}, key=f"alert:{alert.id}"))
    except Exception:
        db.session.rollback()  # unclaimed again: a retry or the sweep sends it
        raise
    db.session.commit()
    log.info("alert %s notified to %d staff", alert.id, len(recipients))
    return True


def _alert_link(alert: RecoveryAlert) -> str:
    return notify.link("survey_staff.alert_detail", institution_id=alert.institution_id, alert_id=alert.id)


def sweep_unnotified_alerts() -> int:
    """Re-drive notifications that were not sent (e.g. Redis was down at submit time)."""
    cutoff = utcnow() - timedelta(minutes=1)
    ids = list(db.session.scalars(select(RecoveryAlert.id).where(RecoveryAlert.notified_at.is_(None),
                                                                 RecoveryAlert.created_at <= cutoff)))
    sent = sum(1 for alert_id in ids if notify_alert(alert_id))
    log.info("alert sweep: %d of %d notified", sent, len(ids))
    return sent


# Personal data ------------------------------------------------------------------------------

def purge_contact_data_job() -> dict[str, int]:
    """Daily job: run the purge and commit; safe to run twice."""
    result = discharges.purge_contact_data(now=utcnow())
    db.session.commit()
    log.info("contact purge: %(discharges)d discharges, %(contact_requests)d contact requests",
                              result)
    return result
