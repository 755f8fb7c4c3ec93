"""Survey jobs: alert notification, sweeps, personal-data purge. All idempotent."""
from __future__ import annotations

from datetime import timedelta

from flask import url_for
from flask_babel import force_locale, gettext
from sqlalchemy import select, update

from core.db import utcnow
from core.extensions import db
from core.notify import Message, send
from core.tasks import job_logger
from organisation.models import Role, StaffUser, staff_department
from survey.models import RecoveryAlert, SurveyResponse

log = job_logger(__name__)


def alert_recipients(alert: RecoveryAlert) -> list[StaffUser]:
    """The department's handlers, else the institution's complaint officers."""
    stmt = select(StaffUser).where(StaffUser.institution_id == alert.institution_id, StaffUser.active.is_(True))
    handlers = []
    if alert.department_id is not None:
        handlers = [u for u in db.session.scalars(stmt.join(staff_department).where(
            staff_department.c.department_id == alert.department_id)) if u.has_role(Role.DEPARTMENT_HANDLER)]
    officers = [u for u in db.session.scalars(stmt) if u.has_role(Role.COMPLAINT_OFFICER)]
    return handlers + [o for o in officers if o not in handlers]


def notify_alert(alert_id: int) -> bool:
    """Tell the department about an alert once; a second run does nothing."""
    alert = db.session.get(RecoveryAlert, alert_id)
    if alert is None or alert.notified_at is not None:
        return False
    # Claim the alert in the database, not on the object read above: the sweep and the job queued at
    # submit time can run at once on two workers, and only one of them may send. A second claimant
    # waits on the row lock and then updates nothing; a failed send rolls the claim back.
    claimed = db.session.execute(
        update(RecoveryAlert).where(RecoveryAlert.id == alert_id, RecoveryAlert.notified_at.is_(None))
        .values(notified_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        return False
    recipients = alert_recipients(alert)
    where = alert.touchpoint.name if alert.touchpoint else (alert.department.name if alert.department else "")
    with force_locale("zh_Hans"):
        subject = gettext("服务补救提醒：%(where)s 收到一条需要跟进的评价", where=where)
        body = gettext("请在“服务补救”中查看并处理。")
    link = _alert_link(alert)
    try:
        send(Message(recipients=[u.username for u in recipients], subject=subject, body=body, kind="survey_alert",
                     link=link, meta={"alert_id": alert.id}))
    except Exception:
        db.session.rollback()  # unclaimed again: a retry or the sweep sends it
        raise
    db.session.commit()
    log.info("alert %s notified to %d staff", alert.id, len(recipients))
    return True


def _alert_link(alert: RecoveryAlert) -> str | None:
    """A link for the message; None outside a request when no SERVER_NAME is configured."""
    try:
        return url_for("survey_staff.alert_detail", institution_id=alert.institution_id, alert_id=alert.id)
    except Exception:  # BuildError or no request/SERVER_NAME: the alert list is still in the app
        return None


def sweep_unnotified_alerts() -> int:
    """Re-drive notifications that were not sent (e.g. Redis was down at submit time)."""
    cutoff = utcnow() - timedelta(minutes=1)
    ids = list(db.session.scalars(select(RecoveryAlert.id).where(RecoveryAlert.notified_at.is_(None),
                                                                 RecoveryAlert.created_at <= cutoff)))
    sent = sum(1 for alert_id in ids if notify_alert(alert_id))
    log.info("alert sweep: %d of %d notified", sent, len(ids))
    return sent


def response_exists(response_id: int) -> bool:
    return db.session.get(SurveyResponse, response_id) is not None
