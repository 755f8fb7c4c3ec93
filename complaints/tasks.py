"""Complaint jobs: deadline reminders, escalation (督办), emergency notices, and the notices that follow a
routing decision.

The escalation ladder (check C8, for a case received Wed 2026-09-30 and due Tue 2026-10-13):

* **reminder** — ComplaintSettings.reminder_days_before working days before the due date (default 1:
  Mon 10-12), the lead department's handlers (and co-handlers whose answer is missing) are reminded;
* **overdue** — after the cut-off, 24:00 Beijing time of the due day, the case is overdue: red in
  every queue from Wed 10-14 00:00. That first overdue working day is the department's last chance;
* **督办** — on the next working day (Thu 10-15), or ComplaintSettings.escalate_after_days working
  days later still, the first-contact officer (首诉负责) and the institution's leadership are told,
  and a 'supervise' event goes on the case's timeline. So 督办 falls on the
  (escalate_after_days + 2)-th working day after the due date.

Each step happens once per due date (Complaint.reminded_for / escalated_for, claimed by one
conditional UPDATE, so two workers or a re-run cannot double it), only on working days (no
notices on holidays or at weekends unless they are make-up workdays), and never while the clock
is paused. A deadline that moves (pause, extension, co-handling) earns a new reminder. Jobs take
ids and an optional ISO ``now`` (for tests and re-runs), and commit their own work.
"""
from __future__ import annotations

from datetime import date, datetime

from flask import url_for
from flask_babel import force_locale, gettext
from sqlalchemy import or_, select, update

from complaints import deadlines, intake
from complaints.handling import (
    OPEN_VALUES,
    complaint_settings,
    due_threshold,
    local_today,
    mask_phone,
    missing_co_answers,
    status_in,
)
from complaints.models import Complaint, ComplaintSettings, Status
from complaints.workflow import log_event
from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.notify import BACKENDS, Message, backend, send
from core.tasks import job_logger
from organisation.models import Department, Role, StaffUser, staff_department

log = job_logger(__name__)
SYSTEM = "complaint-deadlines"


def _at(now: str | datetime | None) -> datetime:
    if now is None:
        return utcnow()
    return now if isinstance(now, datetime) else datetime.fromisoformat(now)


# Who is told ------------------------------------------------------------------------

def _institution_staff(institution_id: int):
    return select(StaffUser).where(StaffUser.institution_id == institution_id, StaffUser.active.is_(True))


def department_handlers(institution_id: int, department_ids: set[int]) -> list[StaffUser]:
    """Active department handlers bound to any of ``department_ids``."""
    if not department_ids:
        return []
    stmt = _institution_staff(institution_id).join(staff_department).where(
        staff_department.c.department_id.in_(department_ids)).distinct()
    return [u for u in db.session.scalars(stmt) if u.has_role(Role.DEPARTMENT_HANDLER)]


def officers(institution_id: int) -> list[StaffUser]:
    return [u for u in db.session.scalars(_institution_staff(institution_id)) if u.has_role(Role.COMPLAINT_OFFICER)]


def leadership(institution_id: int) -> list[StaffUser]:
    return [u for u in db.session.scalars(_institution_staff(institution_id)) if u.has_role(Role.LEADERSHIP)]


def first_contact_or_officers(complaint: Complaint) -> list[StaffUser]:
    """The first-contact officer (首诉负责) if still active, else the institution's complaint officers."""
    person = complaint.first_contact
    if person is not None and person.active:
        return [person]
    return officers(complaint.institution_id)


def _unique(users) -> list[str]:
    return list(dict.fromkeys(u.username for u in users))


def _case_link(complaint: Complaint) -> str | None:
    try:
        return url_for("complaints_staff.case", institution_id=complaint.institution_id, case_id=complaint.id)
    except Exception:  # no request and no SERVER_NAME: the queue still shows the case
        return None


def _claim(column, complaint: Complaint) -> bool:
    """Mark ``column`` with the case's current due date unless it already is; True for the one caller that did.

    A plain UPDATE on the table: it does not bump the case's optimistic-lock version, so a reminder
    never makes an officer's open page stale.
    """
    table = Complaint.__table__
    col = table.c[column.key]
    result = db.session.execute(update(table).where(
        table.c.id == complaint.id, table.c.due_date == complaint.due_date,
        or_(col.is_(None), col != complaint.due_date)).values({column.key: complaint.due_date}))
    if result.rowcount != 1:
        return False
    db.session.expire(complaint, [column.key])
    return True


# Reminders ----------------------------------------------------------------------------

def remind_case(complaint_id: int, now: str | None = None) -> bool:
    """Remind the lead department once per due date, reminder_days_before working days ahead of it."""
    at = _at(now)
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or not complaint.is_open or complaint.paused_since is not None \
            or complaint.due_at is None or at >= complaint.due_at:
        return False
    settings = complaint_settings(complaint.institution_id)
    if complaint.due_date > due_threshold(settings.reminder_days_before, at):
        return False
    if not _claim(Complaint.reminded_for, complaint):
        return False
    departments = {complaint.lead_department_id} - {None}
    departments |= {cd.department_id for cd in missing_co_answers(complaint)}
    recipients = department_handlers(complaint.institution_id, departments) or officers(complaint.institution_id)
    due = complaint.due_date.isoformat()
    with force_locale("zh_Hans"):
        subject = gettext("投诉 %(number)s 将于 %(date)s 到期", number=complaint.case_number, date=due)
        body = gettext("请在办理期限（%(date)s 24:00）前完成调查并提交答复草稿；协办科室请先提交协办意见。",
                       date=due)
        note = gettext("到期提醒已发送（%(n)d 人）。", n=len(recipients))
    send(Message(recipients=_unique(recipients), subject=subject, body=body, kind="complaint_reminder",
                 link=_case_link(complaint), meta={"complaint_id": complaint.id, "due_date": due}))
    data = {"due_date": due, "recipients": len(recipients)}
    log_event(complaint, "remind", actor=SYSTEM, note=note, data=data)
    record(SYSTEM, "complaint.remind", complaint, data)
    db.session.commit()
    log.info("complaint %s reminded (due %s, %d recipients)", complaint.id, due, len(recipients))
    return True


# Escalation (督办) ------------------------------------------------------------------------

def escalation_day(due_date: date, escalate_after_days: int) -> date:
    """The working day 督办 happens: the day after the first overdue working day, plus escalate_after_days."""
    return deadlines.add_working_days(due_date, 2 + max(escalate_after_days, 0))[0]


def escalate_case(complaint_id: int, now: str | None = None) -> bool:
    """督办 an overdue case once per due date: tell the first-contact officer and leadership, log it."""
    at = _at(now)
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or not complaint.is_open or complaint.paused_since is not None \
            or complaint.due_at is None or at < complaint.due_at:
        return False
    settings = complaint_settings(complaint.institution_id)
    if local_today(at) < escalation_day(complaint.due_date, settings.escalate_after_days):
        return False
    if not _claim(Complaint.escalated_for, complaint):
        return False
    overdue_days = deadlines.working_days_between(complaint.due_date, local_today(at))
    lead = db.session.get(Department, complaint.lead_department_id) if complaint.lead_department_id else None
    supervisors = first_contact_or_officers(complaint) + leadership(complaint.institution_id)
    handlers = department_handlers(complaint.institution_id, {complaint.lead_department_id} - {None})
    recipients = _unique(supervisors + handlers)
    due = complaint.due_date.isoformat()
    with force_locale("zh_Hans"):
        subject = gettext("督办：投诉 %(number)s 已超期 %(n)d 个工作日", number=complaint.case_number, n=overdue_days)
        body = gettext("办理期限为 %(date)s，主办科室：%(dept)s。请督促尽快答复投诉人。", date=due,
                       dept=lead.name if lead else gettext("未分派"))
        note = gettext("超期 %(n)d 个工作日，已督办：通知首诉负责人、院领导及主办科室（%(count)d 人）。",
                       n=overdue_days, count=len(recipients))
    send(Message(recipients=recipients, subject=subject, body=body, kind="complaint_escalation",
                 link=_case_link(complaint), meta={"complaint_id": complaint.id, "due_date": due}))
    data = {"due_date": due, "overdue_working_days": overdue_days, "recipients": len(recipients)}
    log_event(complaint, "supervise", actor=SYSTEM, note=note, data=data)
    record(SYSTEM, "complaint.supervise", complaint, data)
    db.session.commit()
    log.info("complaint %s escalated (due %s, %d recipients)", complaint.id, due, len(recipients))
    return True


# The periodic sweep ------------------------------------------------------------------------

def sweep_deadlines(now: str | None = None) -> dict[str, int]:
    """Remind and escalate every case whose turn it is (periodic; only on working days; safe to run twice)."""
    at = _at(now)
    today = local_today(at)
    working, _provisional = deadlines.is_working_day(today)
    if not working:
        log.info("deadline sweep: %s is not a working day", today)
        return {"reminded": 0, "escalated": 0}
    running = [status_in(OPEN_VALUES), Complaint.paused_since.is_(None), Complaint.due_date.is_not(None)]
    lead_days = [n for (n,) in db.session.execute(select(ComplaintSettings.reminder_days_before).distinct())]
    horizon = due_threshold(max(lead_days + [1]), at)
    remind_ids = list(db.session.scalars(select(Complaint.id).where(
        *running, Complaint.due_at > at, Complaint.due_date <= horizon,
        or_(Complaint.reminded_for.is_(None), Complaint.reminded_for != Complaint.due_date)).order_by(Complaint.id)))
    escalate_ids = list(db.session.scalars(select(Complaint.id).where(
        *running, Complaint.due_at <= at,
        or_(Complaint.escalated_for.is_(None), Complaint.escalated_for != Complaint.due_date)).order_by(Complaint.id)))
    db.session.commit()  # end the read: each case is handled (and committed) on its own
    reminded = sum(1 for complaint_id in remind_ids if remind_case(complaint_id, at.isoformat()))
    escalated = sum(1 for complaint_id in escalate_ids if escalate_case(complaint_id, at.isoformat()))
    log.info("deadline sweep: %d reminded, %d escalated", reminded, escalated)
    return {"reminded": reminded, "escalated": escalated}


# Quality-and-safety emergencies ------------------------------------------------------------------

EMERGENCY = "complaint-emergency"


def notify_emergency(complaint_id: int) -> bool:
    """Send a case's quality-and-safety emergency notice once; a second run, or a sweep after it, sends nothing.

    Queued on the high queue after the commit that flagged the case, never
    sent inside it (intake.flag_emergency). The notice is claimed with a
    conditional UPDATE of emergency_notified_at, as survey alerts are: a queued
    job and the sweep running at once send one notice, and a failed send rolls
    the claim back for the sweep and raises, so that the job shows as failed.
    """
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or not complaint.safety_emergency or complaint.emergency_notified_at is not None \
            or Status(complaint.status) in intake.FINISHED_STATUSES:
        return False
    table = Complaint.__table__
    # A plain UPDATE: it does not bump the case's optimistic-lock version (an officer's open page stays valid).
    claimed = db.session.execute(update(table).where(
        table.c.id == complaint.id, table.c.safety_emergency.is_(True), table.c.emergency_notified_at.is_(None))
        .values(emergency_notified_at=utcnow())).rowcount
    if claimed != 1:
        db.session.rollback()
        return False
    db.session.expire(complaint, ["emergency_notified_at"])
    with force_locale("zh_Hans"):
        message = intake.emergency_message(complaint)
    try:
        send(message)
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


def sweep_emergency_notices() -> int:
    """Periodic: send the emergency notices still owed (Redis down after the commit, a failing gateway)."""
    ids = list(db.session.scalars(select(Complaint.id).where(
        Complaint.safety_emergency, Complaint.emergency_notified_at.is_(None),
        Complaint.status.not_in([s.value for s in intake.FINISHED_STATUSES])).order_by(Complaint.id)))
    db.session.commit()  # end the read: each case is claimed (and committed) on its own
    sent = 0
    for complaint_id in ids:
        try:
            sent += notify_emergency(complaint_id)
        except Exception:  # still owed: the next sweep tries again
            log.exception("complaint %s: emergency notice could not be sent", complaint_id)
    if ids:
        log.info("emergency sweep: %d of %d notices sent", sent, len(ids))
    return sent


# Notices after a decision --------------------------------------------------------------------

def send_to_complainant(complaint: Complaint, subject: str, body: str, kind: str) -> bool:
    """Text the complainant through the notifier; the log backend only ever sees the masked number."""
    phone = (complaint.complainant_phone or "").strip()
    if not phone:
        return False
    shown = mask_phone(phone) if backend() is BACKENDS["log"] else phone
    send(Message(recipients=[shown], subject=subject, body=body, kind=kind,
                 meta={"complaint_id": complaint.id, "channel": "sms"}))
    return True


def send_decline_notice(complaint_id: int) -> bool:
    """Tell the complainant why the complaint was not accepted (once; needs a phone number)."""
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or complaint.status != Status.DECLINED.value or not complaint.decline_notice:
        return False
    already = db.session.scalar(select(Complaint.id).where(Complaint.id == complaint.id).where(
        Complaint.events.any(action="decline_notice_sent")))
    if already:
        return False
    with force_locale("zh_Hans"):
        subject = gettext("关于您的投诉（%(number)s）的处理告知", number=complaint.case_number)
        note = gettext("不予受理告知已发送给投诉人。")
    if not send_to_complainant(complaint, subject, complaint.decline_notice, "complaint_decline_notice"):
        return False
    log_event(complaint, "decline_notice_sent", actor=SYSTEM, note=note)
    record(SYSTEM, "complaint.decline_notice_sent", complaint)
    db.session.commit()
    return True


def notify_department(complaint_id: int, department_id: int, kind: str = "assigned") -> int:
    """Tell a department's handlers that a case was routed to them (lead, co-handler or transfer)."""
    complaint = db.session.get(Complaint, complaint_id)
    department = db.session.get(Department, department_id)
    if complaint is None or department is None or department.institution_id != complaint.institution_id:
        return 0
    handlers = department_handlers(complaint.institution_id, {department.id})
    due = complaint.due_date.isoformat() if complaint.due_date else "—"
    with force_locale("zh_Hans"):
        subjects = {
            "assigned": gettext("新投诉 %(number)s 已分派至%(dept)s（主办）"),
            "co": gettext("投诉 %(number)s 请%(dept)s协办"),
            "transferred": gettext("投诉 %(number)s 已转办至%(dept)s，请接收"),
        }
        subject = subjects.get(kind, subjects["assigned"]) % {"number": complaint.case_number, "dept": department.name}
        body = gettext("办理期限：%(date)s。请在“本科室投诉”中查看。", date=due)
    send(Message(recipients=_unique(handlers), subject=subject, body=body, kind=f"complaint_{kind}",
                 link=_case_link(complaint), meta={"complaint_id": complaint.id, "department_id": department.id}))
    return len(handlers)
