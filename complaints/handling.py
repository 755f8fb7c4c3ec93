"""Handling a case: triage, the clock (pauses and extensions), co-handling answers, and the queues.

The rules come from 医疗机构投诉管理办法 and the seeds:

* one desk accepts and routes — "建立投诉一口受理制度 … 负责受理投诉的科室根据投诉内容分配至相关
  科室处理。明确投诉回复责任科室" (seed 003, item 33); "对患者投诉做到首接负责 … 健全并落实患者投诉、
  接待、受理、处理、反馈制度" (seed 004, 一(五));
* what can be settled on the spot is settled on the spot and recorded as such; otherwise the
  complainant hears back within 5 working days, 10 when several departments must be coordinated
  (ComplaintSettings.standard_days / complex_days);
* some complaints are not accepted (court, mediation, an authority, repeated without new facts …),
  and the complainant is told why (check C11: the notice is required);
* while a case waits on the complainant, on mediation or on an expert assessment its clock stands
  still and that time is excluded (check C7); more time needs a reason and someone else's approval.

Every service checks the acting user, takes the version of the page the user acted on
(``expected_version``: a stale page changes nothing, see workflow.ConcurrentChange), flushes,
writes a timeline event and one audit entry. Views commit once. Status changes go through
complaints.workflow.transition; routing (assign, transfer, co-handlers) is in complaints.routing.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, bindparam, case, func, literal_column, or_, select
from sqlalchemy.orm import load_only

from complaints import deadlines
from complaints.access import handles_department, is_officer, leads
from complaints.deadlines import STANDARD, due_threshold, update_deadline
from complaints.models import (
    CaseDepartment,
    CasePause,
    CaseRole,
    Complaint,
    DeclineReason,
    Extension,
    ExtensionStatus,
    PauseReason,
    Status,
)
from complaints.workflow import (
    Action,
    NotAllowed,
    WorkflowError,
    check_version,
    flush_case,
    log_event,
    transition,
)
from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.privacy import mask_name, mask_phone  # noqa: F401 - templates and callers use them from here
from core.services import ServiceError
from organisation.models import Institution, StaffUser

MAX_EXTENSION_DAYS = 20

# What the complainant is told when a complaint is not accepted (the officer edits it before sending).
DECLINE_NOTICES: dict[DeclineReason, Any] = {
    DeclineReason.IN_COURT: _l(
        "您好！您反映的事项已向人民法院提起诉讼。根据《医疗机构投诉管理办法》，已进入诉讼程序的事项，"
        "本院投诉管理部门不再作为投诉受理，将依法配合人民法院的审理工作。感谢您的理解。"),
    DeclineReason.IN_MEDIATION: _l(
        "您好！您反映的事项已申请人民调解。根据《医疗机构投诉管理办法》，已申请人民调解的事项，"
        "本院投诉管理部门不再作为投诉受理，将积极配合医疗纠纷人民调解委员会的调解工作。感谢您的理解。"),
    DeclineReason.BEFORE_AUTHORITY: _l(
        "您好！您反映的事项已由卫生健康主管部门或信访部门受理。为避免重复处理，本院投诉管理部门不再作为投诉受理，"
        "将配合相关部门的处理工作，处理结果以其答复为准。感谢您的理解。"),
    DeclineReason.REPEATED: _l(
        "您好！您反映的事项本院已按程序处理并答复。本次投诉未提供新的事实和证据，根据《医疗机构投诉管理办法》不再重复受理。"
        "如您有新的情况和证据材料，欢迎随时提供，我们将重新予以处理；您也可以依法通过医疗纠纷人民调解、"
        "向卫生健康主管部门申请行政调解或向人民法院起诉等途径解决。"),
    DeclineReason.NO_SUBJECT: _l(
        "您好！您的投诉没有明确的投诉对象和具体事实，本院暂无法受理。欢迎您补充具体的时间、地点、科室或人员及经过后重新提出，"
        "我们将及时处理。"),
    DeclineReason.CRIMINAL: _l(
        "您好！您反映的事项属于治安案件或刑事案件，不属于医疗投诉的受理范围，请向公安机关报案，本院将积极配合调查。"
        "感谢您的理解。"),
}


def default_decline_notice(reason: DeclineReason | str) -> str:
    """The editable default notice for a decline reason."""
    return str(DECLINE_NOTICES[DeclineReason(reason)])


class NotReady(WorkflowError):
    """The lead department may not draft the final reply yet (a co-handler's answer is missing)."""


# Settings and helpers -------------------------------------------------------------

def _require_text(value: str | None, field_name: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ServiceError(message, field_name)
    return value


def require_open(complaint: Complaint) -> None:
    if not complaint.is_open:
        raise NotAllowed(gettext("案件当前状态为“%(status)s”，不能执行此操作。", status=Status(complaint.status).label))


# Triage ----------------------------------------------------------------------------

def _take_first_contact(complaint: Complaint, actor: StaffUser) -> None:
    """A complaint filed by the patient online has no first-contact officer yet: the officer who triages it is."""
    if complaint.first_contact_id is None:
        complaint.first_contact_id = actor.id
        complaint.first_contact = actor


def accept_complaint(complaint: Complaint, *, actor: StaffUser, expected_version: int | None = None) -> Complaint:
    """Accept a registered complaint: its clock starts from the day of receipt (5 working days by default)."""
    transition(complaint, Action.ACCEPT, actor=actor, expected_version=expected_version)
    _take_first_contact(complaint, actor)
    deadline = update_deadline(complaint, rule=STANDARD)
    log_event(complaint, "deadline_set", actor=actor,
              note=gettext("办理期限：%(date)s（%(days)d 个工作日）", date=deadline.due_date.isoformat(),
                           days=deadline.working_days),
              data={"due_date": deadline.due_date.isoformat(), "rule": STANDARD,
                    "provisional": deadline.provisional})
    flush_case()
    return complaint


def settle_on_the_spot(complaint: Complaint, note: str, *, actor: StaffUser,
                       expected_version: int | None = None) -> Complaint:
    """Record a complaint settled on the spot (当场办结) with how it was settled; it is still registered and counted."""
    note = _require_text(note, "note", gettext("请写明当场处理的经过和结果。"))
    transition(complaint, Action.SETTLE, actor=actor, expected_version=expected_version, note=note)
    _take_first_contact(complaint, actor)
    now = utcnow()
    complaint.settlement_note = note
    complaint.first_response_at = complaint.first_response_at or now
    complaint.replied_at = complaint.replied_at or now
    complaint.closed_at = now
    complaint.resolved = True
    flush_case()
    return complaint


def decline_complaint(complaint: Complaint, reason: DeclineReason, notice_text: str, *, actor: StaffUser,
                      expected_version: int | None = None) -> Complaint:
    """Decline a complaint for a legal reason; the notice telling the complainant why is required (C11).

    The view sends the notice (send_decline_notice job) after the commit when the case has a phone number.
    """
    reason = DeclineReason(reason)
    notice_text = _require_text(notice_text, "notice", gettext("请填写告知投诉人的不予受理说明。"))
    transition(complaint, Action.DECLINE, actor=actor, expected_version=expected_version, note=str(reason.label),
               data={"reason": reason.value})
    _take_first_contact(complaint, actor)
    now = utcnow()
    complaint.decline_reason = reason.value
    complaint.decline_notice = notice_text
    complaint.first_response_at = complaint.first_response_at or now
    complaint.closed_at = now
    flush_case()
    return complaint


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
    complaint.pause_reason = reason.value
    log_event(complaint, "pause", actor=actor, note=str(reason.label) + (f"：{note.strip()}" if note.strip() else ""),
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


def request_extension(complaint: Complaint, extra_days: int, reason: str, *, actor: StaffUser,
                      expected_version: int | None = None) -> Extension:
    """Ask for more working days with a reason; the officer or the lead department may ask, someone else approves."""
    check_version(complaint, expected_version)
    if not (is_officer(actor, complaint) or leads(actor, complaint)):
        raise NotAllowed(gettext("只有投诉管理部门或主办科室可以申请延期。"))
    require_open(complaint)
    reason = _require_text(reason, "reason", gettext("请写明延期理由。"))
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
    complaint = db.session.get(Complaint, ext.complaint_id)
    check_version(complaint, expected_version)
    if ext.status != ExtensionStatus.PENDING:
        raise NotAllowed(gettext("该延期申请已处理。"))
    if actor.id == ext.requested_by_id:
        raise NotAllowed(gettext("延期申请须由申请人以外的投诉管理人员审批。"))
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以审批延期。"))
    note = (note or "").strip()
    if not approve and not note:
        raise ServiceError(gettext("不批准时请写明理由。"), "note")
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


# Co-handling answers (check C13) ------------------------------------------------------

def co_departments(complaint: Complaint) -> list[CaseDepartment]:
    return [cd for cd in complaint.departments if cd.role == CaseRole.CO and cd.active]


def missing_co_answers(complaint: Complaint) -> list[CaseDepartment]:
    """Co-handlers whose answer is still missing and was not waived by an officer."""
    return [cd for cd in co_departments(complaint) if cd.answered_at is None and cd.waived_at is None]


def check_ready_to_reply(complaint: Complaint) -> None:
    """The lead may draft the final reply only when every co-handler has answered or an officer waived it (C13)."""
    missing = missing_co_answers(complaint)
    if missing:
        names = "、".join(cd.department.name for cd in missing)
        raise NotReady(gettext("协办科室（%(names)s）尚未提交协办意见，主办科室暂不能起草最终答复；"
                               "如确需先行答复，请投诉管理部门说明理由后放行。", names=names))


def record_co_answer(complaint: Complaint, case_department: CaseDepartment, answer: str, *, actor: StaffUser,
                     expected_version: int | None = None) -> CaseDepartment:
    """A co-handling department gives its answer to the lead (its handlers or an officer may record it)."""
    check_version(complaint, expected_version)
    if (case_department.complaint_id != complaint.id or case_department.role != CaseRole.CO
            or not case_department.active):
        raise NotAllowed(gettext("该科室不是本案的协办科室。"))
    if not (is_officer(actor, complaint) or handles_department(actor, complaint, case_department.department_id)):
        raise NotAllowed(gettext("只有该协办科室或投诉管理部门可以填写协办意见。"))
    require_open(complaint)
    answer = _require_text(answer, "answer", gettext("请填写协办意见。"))
    revised = case_department.answered_at is not None
    case_department.answer = answer
    case_department.answered_at = utcnow()
    case_department.answered_by_id = actor.id
    log_event(complaint, "co_answer", actor=actor, note=f"{case_department.department.name}：{answer}",
              data={"department": case_department.department_id, "revised": revised})
    flush_case()
    record(actor, "complaint.co_answer", complaint, {"department": case_department.department_id,
                                                     "revised": revised})
    return case_department


def waive_co_answer(complaint: Complaint, case_department: CaseDepartment, reason: str, *, actor: StaffUser,
                    expected_version: int | None = None) -> CaseDepartment:
    """An officer lets the lead reply without a co-handler's answer, with a reason (the override of C13)."""
    check_version(complaint, expected_version)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以放行。"))
    if (case_department.complaint_id != complaint.id or case_department.role != CaseRole.CO
            or not case_department.active):
        raise NotAllowed(gettext("该科室不是本案的协办科室。"))
    if case_department.answered_at is not None or case_department.waived_at is not None:
        raise NotAllowed(gettext("该协办科室已答复或已放行。"))
    require_open(complaint)
    reason = _require_text(reason, "reason", gettext("请写明不等待协办意见的理由。"))
    case_department.waived_at = utcnow()
    case_department.waived_by_id = actor.id
    case_department.waive_reason = reason
    log_event(complaint, "co_waived", actor=actor,
              note=gettext("不等待 %(dept)s 的协办意见：%(reason)s", dept=case_department.department.name,
                           reason=reason),
              data={"department": case_department.department_id})
    flush_case()
    record(actor, "complaint.co_waived", complaint, {"department": case_department.department_id})
    return case_department


# Queues ----------------------------------------------------------------------------

OPEN_VALUES = tuple(s.value for s in Status if s in Status.open_statuses())
QUEUE_VALUES = (Status.REGISTERED.value, *OPEN_VALUES)  # what is still to do, triage included


@dataclass
class QueueFilter:
    """What the officer's or a handler's queue shows; every field optional."""

    status: str | None = None            # one status, or None for every open case
    category_id: int | None = None
    department_id: int | None = None     # lead or co-handling
    channel: str | None = None
    overdue: bool = False
    due_within: int | None = None        # working days from today
    emergency: bool = False
    paused: bool = False
    q: str = ""
    departments: set[int] | None = None  # a handler's departments (lead or co); None = the whole institution
    now: datetime = field(default_factory=utcnow)


def status_in(values: Iterable[str]):
    """``status IN ('a', 'b' …)`` with the values written into the SQL, not bound.

    Bound values hide them from PostgreSQL's planner once psycopg prepares the statement (after
    a few runs), and then it cannot prove that the query matches the partial index of open cases
    (ix_complaint_open_due): the queue fell from 0.3 ms to 90 ms at 100,000 cases.
    """
    return Complaint.status.in_(bindparam("statuses", list(values), expanding=True, literal_execute=True,
                                          unique=True))


def _in_departments(ids: Iterable[int]):
    """Led or co-handled by one of ``ids``; the co-handling test reads the partial index ix_complaint_department_co
    (its predicate is written literally, as for status_in)."""
    ids = list(ids)
    co = select(CaseDepartment.complaint_id).where(
        CaseDepartment.department_id.in_(ids), CaseDepartment.role == literal_column("'co'"), CaseDepartment.active)
    return or_(Complaint.lead_department_id.in_(ids), Complaint.id.in_(co))


def queue_statement(institution: Institution, f: QueueFilter):
    """Open cases of an institution, filtered, most urgent first: index-friendly (ix_complaint_open_due)."""
    stmt = select(Complaint).where(Complaint.institution_id == institution.id)
    if f.status == Status.REGISTERED.value:
        stmt = stmt.where(status_in([f.status])).order_by(Complaint.received_at, Complaint.id)
    else:
        if f.status in OPEN_VALUES or f.status == Status.REPLIED.value:
            stmt = stmt.where(status_in([f.status]))
        else:
            # The same IN list as the partial index's predicate, so the planner may read it in due order.
            stmt = stmt.where(status_in(OPEN_VALUES))
        stmt = stmt.order_by(Complaint.due_at.asc().nulls_last(), Complaint.id)
    if f.category_id:
        stmt = stmt.where(Complaint.category_id == f.category_id)
    if f.channel:
        stmt = stmt.where(Complaint.channel == f.channel)
    if f.emergency:
        stmt = stmt.where(Complaint.safety_emergency.is_(True))
    if f.paused:
        stmt = stmt.where(Complaint.paused_since.is_not(None))
    if f.overdue:
        stmt = stmt.where(Complaint.due_at <= f.now, Complaint.paused_since.is_(None))
    if f.due_within is not None:
        stmt = stmt.where(Complaint.due_date <= due_threshold(f.due_within, f.now), Complaint.due_at > f.now)
    if f.department_id:
        stmt = stmt.where(_in_departments([f.department_id]))
    if f.departments is not None:
        stmt = stmt.where(_in_departments(f.departments))
    q = (f.q or "").strip()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        stmt = stmt.where(or_(Complaint.case_number.ilike(like, escape="\\"),
                              Complaint.subject.ilike(like, escape="\\")))
    return stmt.options(load_only(
        Complaint.id, Complaint.institution_id, Complaint.case_number, Complaint.subject, Complaint.channel,
        Complaint.received_at, Complaint.category_id, Complaint.complainant_name, Complaint.status,
        Complaint.lead_department_id, Complaint.safety_emergency, Complaint.due_at, Complaint.due_date,
        Complaint.deadline_provisional, Complaint.paused_since, Complaint.version, raiseload=True))


def queue_counts(institution: Institution, *, departments: set[int] | None = None, now: datetime | None = None,
                 near_days: int = 1) -> dict[str, int]:
    """The queue's headline numbers in one grouped query: open, overdue, due soon, emergencies, paused, to triage."""
    now = now or utcnow()
    near = due_threshold(near_days, now)
    is_open = status_in(OPEN_VALUES)
    running = and_(is_open, Complaint.paused_since.is_(None))

    def count(cond):
        return func.count(case((cond, 1)))

    stmt = select(
        count(is_open).label("open"),
        count(and_(running, Complaint.due_at <= now)).label("overdue"),
        count(and_(running, Complaint.due_at > now, Complaint.due_date <= near)).label("near"),
        count(and_(is_open, Complaint.safety_emergency.is_(True))).label("emergency"),
        count(and_(is_open, Complaint.paused_since.is_not(None))).label("paused"),
        count(status_in([Status.REGISTERED.value])).label("registered"),
    ).where(Complaint.institution_id == institution.id, status_in(QUEUE_VALUES))
    if departments is not None:
        stmt = stmt.where(_in_departments(departments))
    return dict(db.session.execute(stmt).one()._mapping)


def urgency(complaint: Complaint, *, now: datetime, near: date) -> str:
    """overdue | near | paused | ok | none — the row's highlighting in the queues."""
    if complaint.paused_since is not None:
        return "paused"
    if complaint.due_at is None:
        return "none"
    if now >= complaint.due_at:
        return "overdue"
    if complaint.due_date <= near:
        return "near"
    return "ok"
