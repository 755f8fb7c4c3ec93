"""Complaint jobs: deadline reminders, escalation (督办), emergency notices, the notices that follow a
routing decision, and the nightly purge of complainants' names and phones (complaints/retention.py).

The escalation ladder (check C8, for a case received Wed 2026-09-30 and due Tue 2026-10-13):

* **reminder** — ComplaintSettings.reminder_days_before working days before the due date (default 1:
  Mon 10-12), the lead department's handlers (and co-handlers whose answer is missing) are reminded
  (the officers when there is no handler, as for a case still awaiting triage: its clock runs too);
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

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, cast

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update

from complaints import attachments, emergency, intake, retention, workdays
from complaints import feedback as feedback_service
from complaints.cohandling import missing_co_answers
from complaints.deadlines import due_threshold, overdue_sql, recompute_open_deadlines
from complaints.models import (
    CaseEvent,
    Complaint,
    ComplaintSettings,
    Feedback,
    ReopenStatus,
    Reply,
    ReplyStatus,
    Status,
)
from complaints.queues import QUEUE_VALUES, status_in
from complaints.settings import complaint_settings
from complaints.workflow import log_event, text_complainant
from core import notify
from core.audit import record
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from core.signing import forget_used_form_tokens
from core.tasks import job_logger, job_now
from organisation.models import Department, Role, StaffUser
from organisation.services import staff_with_roles

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = job_logger(__name__)
SYSTEM = "complaint-deadlines"

# The kinds of staff notice these jobs send, as the in-app list labels them (core.notify.register_kinds).
NOTICE_KINDS = {
    "complaint_assigned": _l("分派"), "complaint_co": _l("协办"), "complaint_transferred": _l("转办"),
    "complaint_reminder": _l("到期提醒"), "complaint_escalation": _l("督办"), "complaint_emergency": _l("紧急预警"),
    "complaint_reopen_request": _l("重办申请"), "complaint_reply_review": _l("答复待审核"),
    "complaint_reply_returned": _l("答复退回"), "complaint_safety_report": _l("安全投诉待核实"),
}



# Who is told ------------------------------------------------------------------------

def department_handlers(institution_id: int, department_ids: set[int]) -> list[StaffUser]:
    """Active department handlers bound to any of ``department_ids``."""
    return staff_with_roles(institution_id, Role.DEPARTMENT_HANDLER, departments=department_ids)


def first_contact_or_officers(complaint: Complaint) -> list[StaffUser]:
    """The first-contact officer (首诉负责) if still active, else the institution's complaint officers."""
    person = complaint.first_contact
    if person is not None and person.active:
        return [person]
    return staff_with_roles(complaint.institution_id, Role.COMPLAINT_OFFICER)


def _unique(users) -> list[str]:
    return list(dict.fromkeys(u.username for u in users))


def _case_link(complaint: Complaint, anchor: str | None = None) -> str:
    values = {"_anchor": anchor} if anchor else {}
    return notify.link("complaints_staff.case", institution_id=complaint.institution_id, case_id=complaint.id,
                       **values)


def _claim(column, complaint: Complaint) -> bool:
    """Mark ``column`` with the case's current due date unless it already is; True for the one caller that did.

    A plain UPDATE on the table: it does not bump the case's optimistic-lock version, so a reminder
    never makes an officer's open page stale.
    """
    table = Complaint.__table__
    col = table.c[column.key]
    result = cast("CursorResult[Any]", db.session.execute(update(table).where(  # an UPDATE's result has a row count
        table.c.id == complaint.id, table.c.due_date == complaint.due_date,
        or_(col.is_(None), col != complaint.due_date)).values({column.key: complaint.due_date})))
    if result.rowcount != 1:
        return False
    db.session.expire(complaint, [column.key])
    return True


def _clock_runs(complaint: Complaint) -> bool:
    """Still to do (awaiting triage included: the clock runs from receipt) and not paused."""
    return Status(complaint.status) in Status.to_do() and complaint.paused_since is None


# Reminders ----------------------------------------------------------------------------

def remind_case(complaint_id: int, now: str | None = None) -> bool:
    """Remind the lead department once per due date, reminder_days_before working days ahead of it."""
    at = job_now(now)
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or not _clock_runs(complaint) \
            or complaint.due_at is None or complaint.due_date is None or at >= complaint.due_at:
        return False
    settings = complaint_settings(complaint.institution_id)
    if complaint.due_date > due_threshold(settings.reminder_days_before, at):
        return False
    if not _claim(Complaint.reminded_for, complaint):
        return False
    lead_id = complaint.lead_department_id
    departments: set[int] = set() if lead_id is None else {lead_id}
    departments |= {cd.department_id for cd in missing_co_answers(complaint)}
    recipients = (department_handlers(complaint.institution_id, departments)
                  or staff_with_roles(complaint.institution_id, Role.COMPLAINT_OFFICER))
    due = complaint.due_date.isoformat()
    subject = notify.notice_text("投诉 %(number)s 将于 %(date)s 到期", number=complaint.case_number, date=due)
    if complaint.status == Status.REGISTERED:
        body = notify.notice_text("该投诉尚未受理，办理期限（%(date)s 24:00）自接到投诉次日起已在计算，请尽快受理并"
                                  "分派。", date=due)
    else:
        body = notify.notice_text("请在办理期限（%(date)s 24:00）前完成调查并提交答复草稿；协办科室请先提交协办意见。",
                                  date=due)
    with force_locale("zh_Hans"):
        note = gettext("到期提醒已发送（%(n)d 人）。", n=len(recipients))
    notify.send(notify.Message(recipients=_unique(recipients), subject=subject, body=body, kind="complaint_reminder",
                 link=_case_link(complaint), meta={"complaint_id": complaint.id, "due_date": due},
                 key=f"complaint:{complaint.id}:reminder:{due}"))
    data = {"due_date": due, "recipients": len(recipients)}
    log_event(complaint, "remind", actor=SYSTEM, note=note, data=data)
    record(SYSTEM, "complaint.remind", complaint, data)
    db.session.commit()
    log.info("complaint %s reminded (due %s, %d recipients)", complaint.id, due, len(recipients))
    return True


# Escalation (督办) ------------------------------------------------------------------------

def escalation_day(due_date: date, escalate_after_days: int) -> date:
    """The working day 督办 happens: the day after the first overdue working day, plus escalate_after_days."""
    return workdays.add_working_days(due_date, 2 + max(escalate_after_days, 0))[0]


def escalate_case(complaint_id: int, now: str | None = None) -> bool:
    """督办 an overdue case once per due date: tell the first-contact officer and leadership, log it."""
    at = job_now(now)
    complaint = db.session.get(Complaint, complaint_id)
    if complaint is None or not _clock_runs(complaint) \
            or complaint.due_at is None or complaint.due_date is None or at < complaint.due_at:
        return False
    settings = complaint_settings(complaint.institution_id)
    if local_today(at) < escalation_day(complaint.due_date, settings.escalate_after_days):
        return False
    if not _claim(Complaint.escalated_for, complaint):
        return False
    overdue_days = workdays.working_days_between(complaint.due_date, local_today(at))
    lead = db.session.get(Department, complaint.lead_department_id) if complaint.lead_department_id else None
    supervisors = first_contact_or_officers(complaint) + staff_with_roles(complaint.institution_id, Role.LEADERSHIP)
    lead_id = complaint.lead_department_id
    handlers = department_handlers(complaint.institution_id, set() if lead_id is None else {lead_id})
    recipients = _unique(supervisors + handlers)
    due = complaint.due_date.isoformat()
    subject = notify.notice_text("督办：投诉 %(number)s 已超期 %(n)d 个工作日", number=complaint.case_number,
                                 n=overdue_days)
    body = notify.notice_text("办理期限为 %(date)s，主办科室：%(dept)s。请督促尽快答复投诉人。", date=due,
                              dept=lead.name if lead else notify.notice_text("未分派"))
    with force_locale("zh_Hans"):
        note = gettext("超期 %(n)d 个工作日，已督办：通知首诉负责人、院领导及主办科室（%(count)d 人）。",
                       n=overdue_days, count=len(recipients))
    notify.send(notify.Message(recipients=recipients, subject=subject, body=body, kind="complaint_escalation",
                 link=_case_link(complaint), meta={"complaint_id": complaint.id, "due_date": due},
                 key=f"complaint:{complaint.id}:escalation:{due}"))
    data = {"due_date": due, "overdue_working_days": overdue_days, "recipients": len(recipients)}
    log_event(complaint, "supervise", actor=SYSTEM, note=note, data=data)
    record(SYSTEM, "complaint.supervise", complaint, data)
    db.session.commit()
    log.info("complaint %s escalated (due %s, %d recipients)", complaint.id, due, len(recipients))
    return True


# The periodic sweep ------------------------------------------------------------------------

def sweep_deadlines(now: str | None = None) -> dict[str, int]:
    """Remind and escalate every case whose turn it is (periodic; only on working days; safe to run twice)."""
    at = job_now(now)
    today = local_today(at)
    working, _provisional = workdays.is_working_day(today)
    if not working:
        log.info("deadline sweep: %s is not a working day", today)
        return {"reminded": 0, "escalated": 0}
    # Every case still to do, awaiting triage included: its clock runs from receipt.
    running = [status_in(QUEUE_VALUES), Complaint.paused_since.is_(None), Complaint.due_date.is_not(None)]
    lead_days = [n for (n,) in db.session.execute(select(ComplaintSettings.reminder_days_before).distinct())]
    horizon = due_threshold(max(lead_days + [1]), at)
    remind_ids = list(db.session.scalars(select(Complaint.id).where(
        *running, Complaint.due_at > at, Complaint.due_date <= horizon,
        or_(Complaint.reminded_for.is_(None), Complaint.reminded_for != Complaint.due_date)).order_by(Complaint.id)))
    escalate_ids = list(db.session.scalars(select(Complaint.id).where(
        overdue_sql(at, statuses=status_in(QUEUE_VALUES)), Complaint.due_date.is_not(None),
        or_(Complaint.escalated_for.is_(None), Complaint.escalated_for != Complaint.due_date)).order_by(Complaint.id)))
    db.session.commit()  # end the read: each case is handled (and committed) on its own
    reminded = sum(1 for complaint_id in remind_ids if remind_case(complaint_id, at.isoformat()))
    escalated = sum(1 for complaint_id in escalate_ids if escalate_case(complaint_id, at.isoformat()))
    log.info("deadline sweep: %d reminded, %d escalated", reminded, escalated)
    return {"reminded": reminded, "escalated": escalated}


# Quality-and-safety emergencies and public safety reports (complaints.emergency sends them) --------------

def notify_emergency(complaint_id: int) -> bool:
    """Send a case's quality-and-safety emergency notice once (high queue, after the commit that flagged it)."""
    return emergency.send_emergency_notice(complaint_id)


def sweep_emergency_notices() -> int:
    """Periodic: send the emergency notices still owed (Redis down after the commit, a failing gateway)."""
    ids = list(db.session.scalars(select(Complaint.id).where(
        Complaint.safety_emergency, Complaint.emergency_notified_at.is_(None),
        Complaint.status.not_in(Status.values(Status.finished()))).order_by(Complaint.id)))
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


def notify_safety_reports(institution_id: int, now: str | None = None) -> int:
    """Tell the officers on duty, in one notice, about the institution's safety reports not yet told."""
    return emergency.send_safety_report_notice(institution_id, job_now(now))


def sweep_safety_reports(now: str | None = None) -> int:
    """Periodic: send the safety-report notices owed (reports that waited for the window, a failed send)."""
    institutions = list(db.session.scalars(select(Complaint.institution_id).where(
        Complaint.safety_reported_at.is_not(None), Complaint.safety_report_notified_at.is_(None)).distinct()))
    db.session.commit()  # end the read: each institution is claimed (and committed) on its own
    listed = 0
    for institution_id in institutions:
        try:
            listed += notify_safety_reports(institution_id, now)
        except Exception:  # still owed: the next sweep tries again
            log.exception("institution %s: safety-report notice could not be sent", institution_id)
    return listed


# Intake housekeeping -------------------------------------------------------------------------------

def clean_intake(now: str | None = None) -> dict[str, int]:
    """Periodic and idempotent: delete expired pending files and the records of expired used form tokens."""
    at = job_now(now)
    files = attachments.purge_pending(at)
    tokens = forget_used_form_tokens(intake.FORM_TOKEN_MAX_AGE, at)
    if files:
        record("complaint-intake", "complaint.pending_files_purged", None, {"files": files})
    db.session.commit()
    log.info("intake cleanup: %d pending files and %d used form tokens removed", files, tokens)
    return {"files": files, "tokens": tokens}


# Notices after a decision --------------------------------------------------------------------

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
    if not text_complainant(complaint, subject, complaint.decline_notice, kind="complaint_decline_notice"):
        return False
    log_event(complaint, "decline_notice_sent", actor=SYSTEM, note=note)
    record(SYSTEM, "complaint.decline_notice_sent", complaint)
    db.session.commit()
    return True


# How a case reached a department, for notify_department (the message kind is "complaint_<this>").
ASSIGNED, CO_HANDLING, TRANSFERRED = "assigned", "co", "transferred"
# The timeline events that route a case: the newest names the routing a notice is about.
ROUTING_EVENTS = ("assign", "transfer", "co_added")


def notify_department(complaint_id: int, department_id: int, kind: str = ASSIGNED) -> int:
    """Tell a department's handlers that a case was routed to them (lead, co-handler or transfer), once per
    routing: a re-run of the job tells nobody again, a later transfer back to them does."""
    complaint = db.session.get(Complaint, complaint_id)
    department = db.session.get(Department, department_id)
    if complaint is None or department is None or department.institution_id != complaint.institution_id:
        return 0
    handlers = department_handlers(complaint.institution_id, {department.id})
    routing = db.session.scalar(select(func.max(CaseEvent.id)).where(CaseEvent.complaint_id == complaint.id,
                                                                     CaseEvent.action.in_(ROUTING_EVENTS)))
    due = complaint.due_date.isoformat() if complaint.due_date else "—"
    case = {"number": complaint.case_number, "dept": department.name}
    if kind == CO_HANDLING:
        subject = notify.notice_text("投诉 %(number)s 请%(dept)s协办", **case)
    elif kind == TRANSFERRED:
        subject = notify.notice_text("投诉 %(number)s 已转办至%(dept)s，请接收", **case)
    else:
        subject = notify.notice_text("新投诉 %(number)s 已分派至%(dept)s（主办）", **case)
    body = notify.notice_text("办理期限：%(date)s。请在“本科室投诉”中查看。", date=due)
    notify.send(notify.Message(recipients=_unique(handlers), subject=subject, body=body, kind=f"complaint_{kind}",
                 link=_case_link(complaint), meta={"complaint_id": complaint.id, "department_id": department.id},
                 key=f"complaint:{complaint.id}:{kind}:{department.id}:{routing or 0}"))
    db.session.commit()
    return len(handlers)


# Feedback links and 重办 notices ---------------------------------------------------------------

def send_feedback_link(feedback_id: int) -> bool:
    """Text the satisfaction link to the complainant once; nothing to do without a phone or after expiry."""
    feedback = db.session.get(Feedback, feedback_id)
    if feedback is None or feedback.link_sent_at is not None or feedback.answered_at is not None:
        return False
    complaint = db.session.get_one(Complaint, feedback.complaint_id)
    if not complaint.complainant_phone or utcnow() >= feedback.expires_at:
        return False
    days = max(1, round((feedback.expires_at - feedback.created_at).total_seconds() / 86400))
    with force_locale("zh_Hans"):
        subject = gettext("投诉处理回访（编号 %(n)s）", n=complaint.case_number)
        body = gettext("您反映的问题（编号 %(n)s）已办结。请告诉我们您对处理结果是否满意：%(url)s "
                       "（%(days)d 天内有效）",
                       n=complaint.case_number, url=feedback_service.feedback_url(feedback), days=days)
    text_complainant(complaint, subject, body, kind="complaint_feedback", meta={"feedback": feedback.id})
    feedback.link_sent_at = utcnow()
    db.session.commit()
    return True


def sweep_feedback_links() -> int:
    """Re-drive links that were not sent (e.g. Redis was down when the case closed)."""
    cutoff = utcnow() - timedelta(minutes=2)
    ids = list(db.session.scalars(
        select(Feedback.id).join(Complaint, Complaint.id == Feedback.complaint_id)
        .where(Feedback.link_sent_at.is_(None), Feedback.answered_at.is_(None), Feedback.created_at <= cutoff,
               Feedback.expires_at > utcnow(), Complaint.complainant_phone.is_not(None),
               Complaint.complainant_phone != "")))
    sent = 0
    for feedback_id in ids:
        try:
            sent += bool(send_feedback_link(feedback_id))
        except Exception:  # one failing gateway call must not stop the others
            db.session.rollback()
            log.exception("feedback link %s could not be sent", feedback_id)
    return sent


def notify_reopen_request(feedback_id: int) -> bool:
    """Tell the case's first-contact officer and the institution's complaint officers about a 重办 request."""
    feedback = db.session.get(Feedback, feedback_id)
    if feedback is None or feedback.reopen_status != ReopenStatus.REQUESTED:
        return False
    complaint = db.session.get_one(Complaint, feedback.complaint_id)
    officers = staff_with_roles(complaint.institution_id, Role.COMPLAINT_OFFICER)
    recipients = sorted({u.username for u in officers} | (
        {complaint.first_contact.username} if complaint.first_contact is not None else set()))
    subject = notify.notice_text("重办申请：投诉 %(n)s 的投诉人对处理结果不满意", n=complaint.case_number)
    body = notify.notice_text("请在案件页面决定是否重新办理。")
    notify.send(notify.Message(recipients=recipients, subject=subject, body=body, kind="complaint_reopen_request",
                               link=_case_link(complaint, "feedback"), meta={"complaint_id": complaint.id,
                                                                             "feedback": feedback.id},
                               key=f"feedback:{feedback.id}:reopen_request"))
    db.session.commit()
    return True


# Replies waiting for review, and returned ------------------------------------------------------

def notify_reply_review(reply_id: int) -> int:
    """Tell the case's officers (all but the drafter, who may not approve it) that a reply waits for review."""
    reply = db.session.get(Reply, reply_id)
    if reply is None or reply.status != ReplyStatus.SUBMITTED:
        return 0
    complaint = db.session.get_one(Complaint, reply.complaint_id)
    reviewers = [u for u in staff_with_roles(complaint.institution_id, Role.COMPLAINT_OFFICER, Role.INSTITUTION_ADMIN)
                 if u.id != reply.drafted_by_id]
    subject = notify.notice_text("答复待审核：投诉 %(n)s 的答复第 %(v)d 版", n=complaint.case_number, v=reply.number)
    body = notify.notice_text("答复须由起草人以外的投诉管理人员审核后才能发送给投诉人。")
    notify.send(notify.Message(recipients=_unique(reviewers), subject=subject, body=body, kind="complaint_reply_review",
                               link=_case_link(complaint, "replies"),
                               meta={"complaint_id": complaint.id, "reply": reply.number},
                               key=f"reply:{reply.id}:review"))
    db.session.commit()
    return len(reviewers)


def notify_reply_returned(reply_id: int) -> int:
    """Tell the drafter that their reply was returned for rework, with the reviewer's note on the case page."""
    reply = db.session.get(Reply, reply_id)
    if reply is None or reply.status != ReplyStatus.RETURNED:
        return 0
    complaint = db.session.get_one(Complaint, reply.complaint_id)
    drafter = db.session.get(StaffUser, reply.drafted_by_id)
    if drafter is None or not drafter.active:
        return 0
    subject = notify.notice_text("答复被退回：投诉 %(n)s 的答复第 %(v)d 版", n=complaint.case_number, v=reply.number)
    body = notify.notice_text("请按退回意见修改后重新提交审核。")
    notify.send(notify.Message(recipients=[drafter.username], subject=subject, body=body,
                               kind="complaint_reply_returned", link=_case_link(complaint, "replies"),
                               meta={"complaint_id": complaint.id, "reply": reply.number},
                               key=f"reply:{reply.id}:returned"))
    db.session.commit()
    return 1


def notify_reopen_refused(feedback_id: int) -> bool:
    """Tell the complainant (by SMS, when there is a phone) why the case is not handled again."""
    feedback = db.session.get(Feedback, feedback_id)
    if feedback is None or feedback.reopen_status != ReopenStatus.REFUSED:
        return False
    complaint = db.session.get_one(Complaint, feedback.complaint_id)
    if not complaint.complainant_phone:
        return False
    with force_locale("zh_Hans"):
        subject = gettext("投诉 %(n)s 不予重新办理", n=complaint.case_number)
        body = gettext("您对投诉（编号 %(n)s）处理结果的意见已收到。经审查，不予重新办理，理由：%(reason)s",
                       n=complaint.case_number, reason=feedback.reopen_note)
    return text_complainant(complaint, subject, body, kind="complaint_reopen_refused")


# After a calendar edit ----------------------------------------------------------------------

def recompute_deadlines_job(actor_id: int | None = None) -> int:
    """Job: recompute open cases' deadlines after a calendar edit (idempotent), then commit."""
    actor = db.session.get(StaffUser, actor_id) if actor_id else None
    moved = recompute_open_deadlines(actor=actor or "calendar")
    db.session.commit()
    return moved


# Personal data ------------------------------------------------------------------------------

def purge_complainant_contacts_job(now: str | None = None) -> dict[str, int]:
    """Nightly job: null the name and phone of cases finished longer ago than the retention period, and commit.

    Idempotent (a purged case is stamped and skipped); the log line and the audit entry carry counts only.
    """
    result = retention.purge_complainant_contacts(now=job_now(now))
    db.session.commit()
    log.info("complainant contact purge: %(cases)d cases, %(disputes)d of them disputes", result)
    return result
