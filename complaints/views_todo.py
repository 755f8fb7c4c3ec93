"""What the complaint office waits on one person for: the complaints part of the home page's to-do list.

Officers: emergencies and overdue cases, cases to triage, 重办 requests to decide, replies to review, send
and close, extensions to approve, rectifications to verify. Department handlers: their departments'
overdue cases, transfers to take up, cases to answer, co-handling answers owed, rectifications they own.
Every count comes from the queries the queues and case pages use (complaints.queues, .feedback, .pauses,
.rectification); each item links to the queue filtered the same way.
"""
from __future__ import annotations

from datetime import date

from flask import Flask, url_for
from flask_babel import gettext
from sqlalchemy import func, select

from complaints import deadlines, feedback, pauses, queues
from complaints import rectification as remedies
from complaints.blueprints import case_url
from complaints.models import Complaint, Rectification, RectificationStatus, Status
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from organisation.models import Institution, Role, StaffUser
from organisation.scope import Permission, can
from organisation.todo import TodoItem, TodoRow, register_todo

ROWS = 5


def _due_note(complaint: Complaint, today: date) -> tuple[str, bool]:
    left = deadlines.working_days_left(complaint, today)
    if left is None:
        return "", False
    if left < 0:
        return gettext("超期 %(n)d 个工作日", n=-left), True
    if left == 0:
        return gettext("今天到期"), True
    return gettext("剩 %(n)d 个工作日", n=left), False


def _case_label(complaint: Complaint) -> str:
    return f"{complaint.case_number} {complaint.subject[:30]}"


def _case_row(complaint: Complaint, today: date, anchor: str | None = None) -> TodoRow:
    note, urgent = _due_note(complaint, today)
    return TodoRow(_case_label(complaint), case_url(complaint, anchor), note, urgent)


def _count(stmt) -> int:
    return db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def officer_todo(user: StaffUser, institution: Institution) -> list[TodoItem]:
    now = utcnow()
    today = local_today(now)
    queue = "complaints_staff.queue"
    counts = queues.queue_counts(institution, now=now)
    by_status = queues.status_counts(institution, [Status.REPLY_DRAFTED, Status.REPLY_APPROVED, Status.REPLIED])
    reopen = feedback.reopen_requests(institution)
    extensions = pauses.pending_extensions(institution, not_requested_by=user.id)
    to_verify = remedies.open_rectifications(institution, user=user, status=RectificationStatus.DONE.value).where(
        Rectification.done_by_id != user.id)
    return [
        TodoItem(gettext("紧急投诉（医疗质量安全）"), counts["emergency"],
                 url_for(queue, institution_id=institution.id, emergency="y"), urgent=True, order=1),
        TodoItem(gettext("已超期投诉"), counts["overdue"], url_for(queue, institution_id=institution.id, overdue="y"),
                 urgent=True, order=2),
        TodoItem(gettext("待受理"), counts["registered"],
                 url_for(queue, institution_id=institution.id, status=Status.REGISTERED.value), order=10),
        TodoItem(gettext("重办申请待决定"), len(reopen),
                 url_for(queue, institution_id=institution.id, _anchor="reopen"),
                 rows=[TodoRow(_case_label(c), case_url(c, "feedback"),
                               gettext("有新情况或证据") if fb.new_facts else "", fb.new_facts)
                       for fb, c in reopen[:ROWS]], order=11),
        TodoItem(gettext("答复待审核"), by_status[Status.REPLY_DRAFTED],
                 url_for(queue, institution_id=institution.id, status=Status.REPLY_DRAFTED.value), order=12),
        TodoItem(gettext("答复已审核，待发送"), by_status[Status.REPLY_APPROVED],
                 url_for(queue, institution_id=institution.id, status=Status.REPLY_APPROVED.value), order=13),
        TodoItem(gettext("已答复，待办结"), by_status[Status.REPLIED],
                 url_for(queue, institution_id=institution.id, status=Status.REPLIED.value), order=14),
        TodoItem(gettext("延期申请待审批"), len(extensions),
                 case_url(extensions[0][1]) if extensions else "",
                 rows=[_case_row(c, today) for _e, c in extensions[:ROWS]], order=15),
        TodoItem(gettext("整改待验证销号"), _count(to_verify),
                 url_for("complaints_staff.rectifications", institution_id=institution.id,
                         status=RectificationStatus.DONE.value), order=16),
    ]


def handler_todo(user: StaffUser, institution: Institution) -> list[TodoItem]:
    now = utcnow()
    today = local_today(now)
    mine = user.department_ids
    queue = "complaints_staff.department_queue"
    counts = queues.queue_counts(institution, departments=mine, now=now)
    led = queues.status_counts(institution, [Status.IN_HANDLING, Status.TRANSFERRED], led_by=mine)
    to_answer = queues.led_cases(institution, mine, Status.IN_HANDLING, limit=ROWS)
    co = queues.co_answers_missing(institution, mine)
    owned = remedies.open_rectifications(institution, user=user, status=RectificationStatus.OPEN.value).where(
        Rectification.owner_id == user.id)
    return [
        TodoItem(gettext("本科室已超期的投诉"), counts["overdue"],
                 url_for(queue, institution_id=institution.id, overdue="y"), urgent=True, order=3),
        TodoItem(gettext("转给本科室、待接收的投诉"), led[Status.TRANSFERRED],
                 url_for(queue, institution_id=institution.id, status=Status.TRANSFERRED.value), order=20),
        TodoItem(gettext("本科室主办、待起草答复的投诉"), led[Status.IN_HANDLING],
                 url_for(queue, institution_id=institution.id, status=Status.IN_HANDLING.value),
                 rows=[_case_row(c, today, "replies") for c in to_answer], order=21),
        TodoItem(gettext("待提交协办意见"), len(co), url_for(queue, institution_id=institution.id),
                 rows=[_case_row(c, today) for _cd, c in co[:ROWS]], order=22),
        TodoItem(gettext("我负责的整改"), _count(owned),
                 url_for("complaints_staff.rectifications", institution_id=institution.id), order=23),
    ]


def todo(user: StaffUser, institution: Institution) -> list[TodoItem]:
    """The complaints part of the user's to-do list at their own hospital."""
    if user.institution_id != institution.id:
        return []
    items = []
    if can(user, Permission.MANAGE_COMPLAINTS, institution):
        items += officer_todo(user, institution)
    if user.has_role(Role.DEPARTMENT_HANDLER):
        items += handler_todo(user, institution)
    return items


def init_app(app: Flask) -> None:
    register_todo(app, todo)
