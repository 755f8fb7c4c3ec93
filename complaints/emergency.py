"""Quality-and-safety emergencies (医疗质量安全): the officer's flag that pages leadership, and the
complainant's own report that the officers on duty check first.

"涉及医疗质量安全、可能危及患者健康的，应当立即采取积极措施" (医疗机构投诉管理办法). Nothing is sent
here: the caller commits, then queues the notice (complaints.tasks), whose sweep re-drives it.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from flask_babel import gettext
from sqlalchemy import func, select, update

from complaints.categories import category_notice_text
from complaints.models import Category, Complaint, Status
from complaints.workflow import log_event
from core import notify
from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.services import ServiceError
from core.tasks import job_logger
from organisation.models import Role, StaffUser
from organisation.services import staff_with_roles

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = job_logger(__name__)


class EmergencyError(ServiceError):
    """An emergency flag was refused; the message is for the user."""


def report_safety(complaint: Complaint, *, actor: Any) -> None:
    """A complainant's own form chose a quality-and-safety category: the officers on duty are to check it.

    Nothing is sent here (see flag_emergency for why): the caller commits, then queues
    ``complaints.tasks.notify_safety_reports``, which sends the officers one notice for every report not
    yet told, at most one notice per institution every SAFETY_REPORT_WINDOW; the minutely sweep sends the
    rest. The officer who finds a real emergency flags it on the case page (flag_emergency), which pages
    leadership. A form is no pager: one person, or a script, must not be able to wake a hospital's leaders.
    """
    complaint.safety_reported_at = utcnow()
    log_event(complaint, "safety_reported", actor=actor)
    db.session.flush()
    record(actor, "complaint.safety_report", complaint)


def emergency_recipients(institution_id: int) -> list[StaffUser]:
    """Who is alerted at once: the institution's complaint officers, admins and leadership."""
    return staff_with_roles(institution_id, Role.COMPLAINT_OFFICER, Role.INSTITUTION_ADMIN, Role.LEADERSHIP)


def flag_emergency(complaint: Complaint, *, actor: Any, note: str = "") -> bool:
    """Mark a case as a quality-and-safety emergency whose officers, admins and leadership are to be alerted now.

    "涉及医疗质量安全、可能危及患者健康的，应当立即采取积极措施" (医疗机构投诉管理办法). The
    notice is not sent here: at registration this runs under the lock of the
    case-number counter, and a slow SMS gateway would hold up every other
    registration at the hospital. The caller commits, then queues
    ``complaints.tasks.notify_emergency`` on the high queue; a minutely sweep
    sends any notice still owed. Returns False if the case was already flagged.
    """
    if complaint.safety_emergency:
        return False
    if Status(complaint.status) in Status.finished():
        # A finished case is reopened first; an alarm about it would send people to nothing.
        raise EmergencyError(gettext("案件已结束，请先重新处理后再标记紧急。"))
    complaint.safety_emergency = True
    log_event(complaint, "emergency", actor=actor, note=(note or "")[:500])
    db.session.flush()
    record(actor, "complaint.flag_emergency", complaint)
    return True


def emergency_message(complaint: Complaint) -> notify.Message:
    """The emergency notice of a case, to its institution's officers, admins and leadership."""
    recipients = [u.username for u in emergency_recipients(complaint.institution_id)]
    category = db.session.get(Category, complaint.category_id) if complaint.category_id else None
    place = complaint.touchpoint.name if complaint.touchpoint is not None else ""
    departments = "、".join(d.name for d in complaint.concerned_departments)
    # No complainant name, phone or description: the message may travel by SMS or e-mail.
    body = notify.notice_text("案件 %(number)s（%(category)s）涉及医疗质量安全，可能危及患者健康，请立即处理。",
                              number=complaint.case_number, category=category_notice_text(category))
    where = "；".join(filter(None, [place, departments]))
    if where:
        body += " " + notify.notice_text("涉及：%(where)s。", where=where)
    subject = notify.notice_text("【紧急】医疗质量安全投诉 %(number)s", number=complaint.case_number)
    return notify.Message(recipients=recipients, kind="complaint_emergency", subject=subject, body=body,
                          link=notify.link("complaints_staff.case", institution_id=complaint.institution_id,
                                           case_id=complaint.id),
                          meta={"complaint_id": complaint.id, "institution_id": complaint.institution_id},
                          key=f"complaint:{complaint.id}:emergency")


def safety_report_recipients(institution_id: int) -> list[StaffUser]:
    """Who checks a public safety report: the institution's complaint officers (its admins if it has none)."""
    return (staff_with_roles(institution_id, Role.COMPLAINT_OFFICER)
            or staff_with_roles(institution_id, Role.INSTITUTION_ADMIN))


SAFETY_REPORT_LISTED = 20  # a notice names this many cases at most, and counts the rest


def safety_report_message(institution_id: int, complaints: Sequence[Complaint]) -> notify.Message:
    """One notice to the officers on duty listing public safety reports to check (no personal data)."""
    recipients = [u.username for u in safety_report_recipients(institution_id)]
    body = notify.notice_text("投诉人在网上投诉时选择了“医疗质量安全”。请尽快核实：确属可能危及患者健康的，请在案件页"
                              "点击“标记为医疗质量安全紧急投诉，立即预警”，系统会立即通知院领导。")
    for complaint in complaints[:SAFETY_REPORT_LISTED]:
        where = "；".join(filter(None, [complaint.touchpoint.name if complaint.touchpoint is not None else "",
                                       "、".join(d.name for d in complaint.concerned_departments)]))
        body += "\n" + (notify.notice_text("%(number)s（%(where)s）", number=complaint.case_number, where=where)
                        if where else complaint.case_number)
    if len(complaints) > SAFETY_REPORT_LISTED:
        body += "\n" + notify.notice_text("另有 %(n)d 件，见投诉工作台。", n=len(complaints) - SAFETY_REPORT_LISTED)
    if len(complaints) == 1:
        link = notify.link("complaints_staff.case", institution_id=institution_id, case_id=complaints[0].id)
    else:
        link = notify.link("complaints_staff.queue", institution_id=institution_id)
    return notify.Message(recipients=recipients, kind="complaint_safety_report",
                          subject=notify.notice_text("【待核实】%(n)d 件网上投诉涉及医疗质量安全", n=len(complaints)),
                          body=body, link=link,
                          meta={"institution_id": institution_id, "complaint_ids": [c.id for c in complaints]},
                          key=f"complaint:{complaints[0].id}:safety_report")  # each case is claimed once


# Sending the notices (run by the jobs in complaints.tasks) ---------------------------------------

EMERGENCY = "complaint-emergency"


def send_emergency_notice(complaint_id: int) -> bool:
    """Send a case's quality-and-safety emergency notice once; a second run, or a sweep after it, sends nothing.

    Run by the job complaints.tasks.notify_emergency, queued on the high queue after the commit that
    flagged the case, never inside it (flag_emergency). The notice is claimed with a
    conditional UPDATE of emergency_notified_at, as survey alerts are: a queued
    job and the sweep running at once send one notice, and a failed send rolls
    the claim back for the sweep and raises, so that the job shows as failed.
    """
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or not complaint.safety_emergency or complaint.emergency_notified_at is not None \
            or Status(complaint.status) in Status.finished():
        return False
    table = Complaint.__table__
    # A plain UPDATE: it does not bump the case's optimistic-lock version (an officer's open page stays valid).
    claimed = cast("CursorResult[Any]", db.session.execute(update(table).where(  # an UPDATE's result has a row count
        table.c.id == complaint.id, table.c.safety_emergency.is_(True), table.c.emergency_notified_at.is_(None))
        .values(emergency_notified_at=utcnow()))).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    db.session.expire(complaint, ["emergency_notified_at"])
    message = emergency_message(complaint)
    try:
        notify.send(message)
    except Exception:
        db.session.rollback()  # unclaimed again: the sweep tries again
        _note_failed_emergency_notice(complaint_id)
        raise
    data = {"recipients": len(message.recipients)}
    log_event(complaint, "emergency_alerted", actor="system", data=data)
    record(EMERGENCY, "complaint.emergency_notice_sent", complaint, data)
    db.session.commit()
    log.info("complaint %s: emergency notice sent to %d staff", complaint.id, len(message.recipients))
    return True


def _note_failed_emergency_notice(complaint_id: int) -> None:
    """Put the failure on the case's timeline, once: the sweep keeps trying every minute."""
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is not None and not any(e.action == "emergency_alert_failed" for e in complaint.events):
        log_event(complaint, "emergency_alert_failed", actor="system")
        db.session.commit()


# Public safety reports: the officers on duty check them ----------------------------------------

# At most one notice per institution in this window: a burst of reports (a flood among them) is one notice.
SAFETY_REPORT_WINDOW = timedelta(minutes=10)


def send_safety_report_notice(institution_id: int, at: datetime) -> int:
    """Tell the officers on duty, in one notice, about every safety report of the institution not yet told.

    A complainant's own form in a quality-and-safety category is a report to check
    (report_safety), not a page to leadership; run by the job complaints.tasks.notify_safety_reports,
    queued after the commit that registered a report: the first report of a quiet spell is told at once, and
    reports within SAFETY_REPORT_WINDOW of the last notice wait for the minutely
    sweep, which sends them together once the window has passed. The reports are
    claimed with one conditional UPDATE (a queued job and the sweep at once send one
    notice); a failed send rolls the claim back and raises. Returns how many cases
    the notice listed (0: nothing owed, or the window is not over).
    """
    last = db.session.scalar(select(func.max(Complaint.safety_report_notified_at))
                             .where(Complaint.institution_id == institution_id))
    if last is not None and at - last < SAFETY_REPORT_WINDOW:
        db.session.commit()  # end the read
        return 0
    table = Complaint.__table__
    claimed = list(db.session.scalars(update(table).where(
        table.c.institution_id == institution_id, table.c.safety_reported_at.is_not(None),
        table.c.safety_report_notified_at.is_(None)).values(safety_report_notified_at=at).returning(table.c.id)))
    # Cases flagged or finished meanwhile need no check: claimed, not listed.
    cases = [c for c in db.session.scalars(select(Complaint).where(Complaint.id.in_(claimed))
                                           .execution_options(populate_existing=True).order_by(Complaint.id))
             if not c.safety_emergency and Status(c.status) not in Status.finished()] if claimed else []
    if not cases:
        db.session.commit()
        return 0
    message = safety_report_message(institution_id, cases)
    try:
        notify.send(message)
    except Exception:
        db.session.rollback()  # unclaimed again: the sweep tries again
        raise
    data = {"listed": len(cases), "recipients": len(message.recipients)}
    for complaint in cases:
        log_event(complaint, "safety_report_notified", actor="system", data=data)
        record(EMERGENCY, "complaint.safety_report_notice_sent", complaint, data)
    db.session.commit()
    log.info("institution %s: %d safety reports told to %d officers", institution_id, len(cases),
             len(message.recipients))
    return len(cases)
