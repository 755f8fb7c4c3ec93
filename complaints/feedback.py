"""The complainant's satisfaction after closing (回访), and reopening a case (重办).

When a case closes the complainant gets a one-question link, no account needed:
"您对本次投诉的处理结果是否满意？" (满意 / 基本满意 / 不满意), an optional comment and
"我有新的情况或证据". The link is a signed id (core.signing.signed_id), works
once, and expires after ComplaintSettings.feedback_valid_days (7 by default).
Complaint.satisfaction takes the answer, which is what 满意率 counts.

An unhappy answer opens a 重办 request (acceptance check C14; 济南 12345 条例
第27条: unsatisfied → sent back to be redone). The officer decides: the 投诉管理办法
reopens a case when the complainant "对处理意见有争议并能够提供新情况和证据材料的，
按照投诉流程重新予以处理", so the request shows whether new facts were reported.
Accepting reopens the case (REOPEN, then RESUME) with a new deadline counted
from the reopening; refusing needs a reason, which the complainant is told.

Follow-up calls: staff may record the answer the complainant gave on the phone.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from flask_babel import gettext
from sqlalchemy import select, update

from complaints.access import is_officer
from complaints.deadlines import reopen_deadline
from complaints.models import Complaint, ComplaintSettings, Feedback, ReopenStatus, Satisfaction, Status
from complaints.workflow import Action, WorkflowError, check_version, log_event, touch, transition
from core import signing
from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.public import public_url
from core.services import clean_text
from organisation.models import Institution, StaffUser

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

log = logging.getLogger(__name__)

PURPOSE = "complaint-feedback"
MAX_COMMENT = 1000
MAX_REASON = 2000
DEFAULT_VALID_DAYS = 7


class FeedbackError(WorkflowError):
    """A feedback rule was broken; the message is for the user."""

    def __init__(self, message: str, field: str | None = None, problem: str | None = None):
        super().__init__(message, field)
        self.problem = problem  # for the public page: 'used' or 'expired'


# Opening the link ---------------------------------------------------------------------

def valid_days(institution_id: int) -> int:
    settings = db.session.get(ComplaintSettings, institution_id)
    days = settings.feedback_valid_days if settings is not None else None
    return days if days and days > 0 else DEFAULT_VALID_DAYS


def open_feedback(complaint: Complaint, *, actor, now: datetime | None = None) -> Feedback:
    """A closed case gets a fresh single-use satisfaction link, valid for the institution's feedback days."""
    now = now or utcnow()
    days = valid_days(complaint.institution_id)
    feedback = Feedback(complaint_id=complaint.id, created_at=now, expires_at=now + timedelta(days=days),
                        comment="", new_facts=False, reopened=False, reopen_note="")
    db.session.add(feedback)
    db.session.flush()
    log_event(complaint, "feedback_opened", actor=actor, data={"feedback": feedback.id, "valid_days": days})
    record(actor, "complaint.feedback.open", complaint, {"feedback": feedback.id, "valid_days": days})
    return feedback


def feedback_token(feedback: Feedback) -> str:
    return signing.signed_id(PURPOSE, feedback.id)


def feedback_url(feedback: Feedback) -> str:
    """The public address of the satisfaction page, for the SMS."""
    return public_url("complaints.feedback", token=feedback_token(feedback))


def resolve_token(token: str, *, now: datetime | None = None) -> tuple[Feedback | None, str | None]:
    """The feedback a link names; problem is 'invalid', 'used' or 'expired' when it cannot be answered."""
    return signing.resolve_link(PURPOSE, token, Feedback, used="answered_at", expires="expires_at", now=now)


def pending_feedback(complaint: Complaint, *, now: datetime | None = None) -> Feedback | None:
    """The satisfaction link a closed case still waits on (unanswered, unexpired, the newest); None otherwise.

    The progress lookup shows it to the complainant who passed its check (case number and code).
    """
    if Status(complaint.status) != Status.CLOSED:
        return None
    return db.session.scalar(select(Feedback).where(Feedback.complaint_id == complaint.id,
                                                    Feedback.answered_at.is_(None),
                                                    Feedback.expires_at > (now or utcnow()))
                             .order_by(Feedback.id.desc()).limit(1))


def feedback_for(complaint: Complaint) -> list[Feedback]:
    """The case's satisfaction links and answers, newest first."""
    return list(db.session.scalars(select(Feedback).where(Feedback.complaint_id == complaint.id)
                                   .order_by(Feedback.id.desc())))


# Answering ------------------------------------------------------------------------------

def reopen_requests(institution: Institution) -> list[tuple[Feedback, Complaint]]:
    """The institution's 重办 requests still waiting for an officer's decision, oldest first (the workbench)."""
    return list(db.session.execute(
        select(Feedback, Complaint).join(Complaint, Complaint.id == Feedback.complaint_id)
        .where(Complaint.institution_id == institution.id, Feedback.reopen_status == ReopenStatus.REQUESTED)
        .order_by(Feedback.answered_at, Feedback.id)).tuples())


def answer_feedback(feedback: Feedback, answer: str, comment: str = "", new_facts: bool = False, *,
                    actor: StaffUser | str = "complainant", now: datetime | None = None) -> Feedback:
    """The complainant answers once, before the link expires; an unhappy answer asks for the case to be redone.

    Staff recording a follow-up call pass themselves as ``actor``; the link's
    expiry then does not apply (the call may come later), single use does.
    """
    now = now or utcnow()
    by_staff = isinstance(actor, StaffUser)
    if feedback.answered_at is not None:
        raise FeedbackError(gettext("这次回访已经提交过评价，每个链接只能提交一次。"), problem="used")
    if not by_staff and now >= feedback.expires_at:
        raise FeedbackError(gettext("评价链接已过期。"), problem="expired")
    try:
        answer = Satisfaction(answer)
    except ValueError:
        raise FeedbackError(gettext("请选择您对处理结果的满意程度。"), "answer") from None
    comment = clean_text(comment, field="comment", label=gettext("意见"), limit=MAX_COMMENT, error=FeedbackError)
    complaint = db.session.get_one(Complaint, feedback.complaint_id)
    unhappy = answer == Satisfaction.UNSATISFIED
    # Single use even for two taps at once: only the first UPDATE finds the link unanswered.
    claimed = cast("CursorResult[Any]", db.session.execute(
        update(Feedback).where(Feedback.id == feedback.id, Feedback.answered_at.is_(None))
        .values(answered_at=now, answer=answer.value, comment=comment, new_facts=bool(new_facts),
                answered_by_id=actor.id if isinstance(actor, StaffUser) else None,
                reopen_status=ReopenStatus.REQUESTED if unhappy else None)
        .execution_options(synchronize_session=False)))  # an UPDATE's result carries its row count
    db.session.refresh(feedback)
    if claimed.rowcount != 1:
        raise FeedbackError(gettext("这次回访已经提交过评价，每个链接只能提交一次。"), problem="used")
    # satisfaction is the complainant's, not an officer's edit: write it without taking the
    # case's optimistic lock, so an officer working on the case is not told it changed under them.
    db.session.execute(update(Complaint).where(Complaint.id == complaint.id).values(satisfaction=answer.value)
                       .execution_options(synchronize_session=False))
    db.session.refresh(complaint, ["satisfaction"])
    data = {"feedback": feedback.id, "answer": answer.value, "new_facts": bool(new_facts),
            "via": "phone" if by_staff else "link"}
    note = gettext("投诉人评价：%(answer)s", answer=answer.label)
    if unhappy:
        note += gettext("；已生成重办申请，请投诉管理部门处理。")
        if new_facts:
            note += gettext("投诉人表示有新的情况或证据。")
    log_event(complaint, "feedback_answered", actor=actor if by_staff else gettext("投诉人"), note=note, data=data)
    db.session.flush()
    record(actor, "complaint.feedback.answer", complaint, data)
    return feedback


# The officer's decision on a 重办 request -----------------------------------------------

def _requested(feedback: Feedback) -> Complaint:
    if feedback.reopen_status != ReopenStatus.REQUESTED:
        raise FeedbackError(gettext("该重办申请已经处理过了。"))
    return db.session.get_one(Complaint, feedback.complaint_id)


def accept_reopen(feedback: Feedback, *, actor: StaffUser, expected_version: int | None = None,
                  now: datetime | None = None) -> Complaint:
    """An officer accepts a 重办 request: the case is reopened and handled again with a new deadline."""
    complaint = _requested(feedback)
    if not is_officer(actor, complaint):
        raise FeedbackError(gettext("只有投诉管理人员可以处理重办申请。"))
    if Status(complaint.status) != Status.CLOSED:
        raise FeedbackError(gettext("案件当前状态为“%(status)s”，不能重新办理。",
                                    status=Status(complaint.status).label))
    now = now or utcnow()
    note = gettext("投诉人对处理结果不满意，重新办理。")
    transition(complaint, Action.REOPEN, actor=actor, expected_version=expected_version, note=note,
               data={"feedback": feedback.id, "new_facts": feedback.new_facts})
    complaint.reopened_count = (complaint.reopened_count or 0) + 1
    complaint.closed_at = None
    complaint.resolved = None
    deadline = reopen_deadline(complaint, now)
    transition(complaint, Action.RESUME, actor=actor,
               note=gettext("重新办理期限：%(date)s", date=deadline.due_date.isoformat()),
               data={"due_date": deadline.due_date.isoformat(), "provisional": deadline.provisional})
    feedback.reopen_status = ReopenStatus.ACCEPTED
    feedback.reopened = True
    feedback.reopen_decided_by_id = actor.id
    feedback.reopen_decided_at = now
    record(actor, "complaint.feedback.reopen_accept", complaint,
           {"feedback": feedback.id, "reopened_count": complaint.reopened_count,
            "due_date": deadline.due_date.isoformat()})
    return complaint


def refuse_reopen(feedback: Feedback, reason: str, *, actor: StaffUser, expected_version: int | None = None,
                  now: datetime | None = None) -> Feedback:
    """An officer refuses a 重办 request with a reason the complainant is told (e.g. no new facts or evidence)."""
    reason = clean_text(reason, field="reason", label=gettext("理由"), limit=MAX_REASON,
                        required=gettext("请填写不予重办的理由。"), error=FeedbackError)
    complaint = _requested(feedback)
    if not is_officer(actor, complaint):
        raise FeedbackError(gettext("只有投诉管理人员可以处理重办申请。"))
    check_version(complaint, expected_version)
    feedback.reopen_status = ReopenStatus.REFUSED
    feedback.reopen_note = reason
    feedback.reopen_decided_by_id = actor.id
    feedback.reopen_decided_at = now or utcnow()
    log_event(complaint, "reopen_refused", actor=actor, note=reason, data={"feedback": feedback.id})
    touch(complaint)
    record(actor, "complaint.feedback.reopen_refuse", complaint, {"feedback": feedback.id})
    return feedback
