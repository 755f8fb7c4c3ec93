"""The case's clock stopped and extended: pauses (check C7) and extensions approved by someone else.

While a case waits on the complainant, on mediation or on an expert assessment its clock stands
still and that time is excluded from the deadline (complaints.deadlines); more time needs a
reason and another officer's approval.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import gettext
from sqlalchemy import select

from complaints import deadlines
from complaints.access import is_officer, leads
from complaints.deadlines import update_deadline
from complaints.models import (
    CasePause,
    Complaint,
    Extension,
    ExtensionStatus,
    PauseReason,
)
from complaints.workflow import (
    NotAllowed,
    check_version,
    flush_case,
    log_event,
    require_open,
    require_text,
)
from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.services import ServiceError, clean_text
from organisation.models import Institution, StaffUser

MAX_EXTENSION_DAYS = 20


# Pauses ----------------------------------------------------------------------------

def open_pause(complaint: Complaint) -> CasePause | None:
    return db.session.scalar(select(CasePause).where(CasePause.complaint_id == complaint.id,
                                                     CasePause.ended_at.is_(None)))


def pause_clock(complaint: Complaint, reason: PauseReason, *, actor: StaffUser, expected_version: int | None = None,
                note: str = "", at: datetime | None = None) -> CasePause:
    """Stop the clock while the case waits on the complainant, mediation or an expert assessment (officers only)."""
    check_version(complaint, expected_version)
    reason = PauseReason(reason)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以暂停计时。"))
    require_open(complaint)
    if complaint.paused_since is not None:
        raise NotAllowed(gettext("该案件已在暂停计时中。"))
    at = at or utcnow()
    pause = CasePause(complaint_id=complaint.id, reason=reason.value, started_at=at, started_by_id=actor.id)
    db.session.add(pause)
    complaint.paused_since = at
    complaint.pause_reason = reason
    note = clean_text(note, field="note")
    log_event(complaint, "pause", actor=actor, note=str(reason.label) + (f"：{note}" if note else ""),
              data={"reason": reason.value, "at": at.isoformat()})
    flush_case()
    record(actor, "complaint.pause", complaint, {"reason": reason.value})
    return pause


def resume_clock(complaint: Complaint, *, actor: StaffUser, expected_version: int | None = None,
                 at: datetime | None = None) -> deadlines.Deadline:
    """Restart the clock; the deadline is recomputed with every paused period excluded."""
    check_version(complaint, expected_version)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以恢复计时。"))
    pause = open_pause(complaint)
    if complaint.paused_since is None or pause is None:
        raise NotAllowed(gettext("该案件没有在暂停计时。"))
    at = at or utcnow()
    if at < pause.started_at:
        raise ServiceError(gettext("恢复时间不能早于暂停开始时间。"))
    old_due = complaint.due_date
    pause.ended_at = at
    complaint.paused_since = None
    complaint.pause_reason = None
    deadline = update_deadline(complaint, now=at)
    data = {"reason": pause.reason, "from": old_due.isoformat() if old_due else None,
            "to": deadline.due_date.isoformat()}
    log_event(complaint, "resume_clock", actor=actor,
              note=gettext("恢复计时，办理期限调整为 %(date)s。", date=deadline.due_date.isoformat()), data=data)
    flush_case()
    record(actor, "complaint.resume_clock", complaint, data)
    return deadline


# Extensions ------------------------------------------------------------------------

def pending_extension(complaint: Complaint) -> Extension | None:
    return db.session.scalar(select(Extension).where(Extension.complaint_id == complaint.id,
                                                     Extension.status == ExtensionStatus.PENDING))


def pending_extensions(institution: Institution, *, not_requested_by: int | None = None
                       ) -> list[tuple[Extension, Complaint]]:
    """Extension requests of the institution waiting for a decision (leaving out one person's own), oldest first."""
    stmt = (select(Extension, Complaint).join(Complaint, Complaint.id == Extension.complaint_id)
            .where(Complaint.institution_id == institution.id, Extension.status == ExtensionStatus.PENDING)
            .order_by(Extension.requested_at, Extension.id))
    if not_requested_by is not None:
        stmt = stmt.where(Extension.requested_by_id != not_requested_by)
    return list(db.session.execute(stmt).tuples())


def request_extension(complaint: Complaint, extra_days: int, reason: str, *, actor: StaffUser,
                      expected_version: int | None = None) -> Extension:
    """Ask for more working days with a reason; the officer or the lead department may ask, someone else approves."""
    check_version(complaint, expected_version)
    if not (is_officer(actor, complaint) or leads(actor, complaint)):
        raise NotAllowed(gettext("只有投诉管理部门或主办科室可以申请延期。"))
    require_open(complaint)
    reason = require_text(reason, "reason", gettext("请写明延期理由。"))
    if not 1 <= int(extra_days) <= MAX_EXTENSION_DAYS:
        raise ServiceError(gettext("延长的工作日须在 1 到 %(n)d 之间。", n=MAX_EXTENSION_DAYS), "extra_days")
    if pending_extension(complaint) is not None:
        raise ServiceError(gettext("已有一项延期申请待审批。"), "extra_days")
    ext = Extension(complaint_id=complaint.id, extra_days=int(extra_days), reason=reason,
                    status=ExtensionStatus.PENDING, requested_by_id=actor.id, requested_at=utcnow())
    db.session.add(ext)
    log_event(complaint, "extension_requested", actor=actor,
              note=gettext("申请延期 %(n)d 个工作日：%(reason)s", n=ext.extra_days, reason=reason),
              data={"extra_days": ext.extra_days})
    flush_case()
    record(actor, "complaint.extension_requested", complaint, {"extension": ext.id, "extra_days": ext.extra_days})
    return ext


def may_decide_extension(user: StaffUser, ext: Extension, complaint: Complaint) -> bool:
    """An officer other than the person who asked."""
    return ext.status == ExtensionStatus.PENDING and user.id != ext.requested_by_id and is_officer(user, complaint)


def decide_extension(ext: Extension, approve: bool, note: str, *, actor: StaffUser,
                     expected_version: int | None = None) -> Extension:
    """Approve or refuse an extension; the approver must be another officer; approval moves the due date."""
    complaint = db.session.get_one(Complaint, ext.complaint_id)
    check_version(complaint, expected_version)
    if ext.status != ExtensionStatus.PENDING:
        raise NotAllowed(gettext("该延期申请已处理。"))
    if actor.id == ext.requested_by_id:
        raise NotAllowed(gettext("延期申请须由申请人以外的投诉管理人员审批。"))
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以审批延期。"))
    note = clean_text(note, field="note", required=None if approve else gettext("不批准时请写明理由。"))
    if approve:
        require_open(complaint)
    ext.status = ExtensionStatus.APPROVED if approve else ExtensionStatus.REJECTED
    ext.decided_by_id = actor.id
    ext.decided_at = utcnow()
    ext.decision_note = note
    data: dict[str, Any] = {"extension": ext.id, "extra_days": ext.extra_days}
    if approve:
        old_due = complaint.due_date
        deadline = update_deadline(complaint)
        data.update({"from": old_due.isoformat() if old_due else None, "to": deadline.due_date.isoformat()})
        text = gettext("批准延期 %(n)d 个工作日，办理期限调整为 %(date)s。", n=ext.extra_days,
                       date=deadline.due_date.isoformat())
    else:
        text = gettext("不批准延期：%(note)s", note=note)
    if approve and note:
        text += f"（{note}）"
    log_event(complaint, "extension_" + ext.status, actor=actor, note=text, data=data)
    flush_case()
    record(actor, "complaint.extension_" + ext.status, complaint, data)
    return ext
