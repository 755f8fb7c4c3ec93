"""The complaint workflow as one explicit state machine.

Every transition is listed in TRANSITIONS with the statuses it may start
from, the status it leads to and the roles that may take it. transition()
checks both, refuses a stale page (optimistic locking), appends a timeline
event and writes the audit entry. Services add what a transition means
(deadlines, replies, notifications) around it; nothing else sets
Complaint.status.

    registered ─accept→ accepted ─assign→ in_handling ─draft_reply→ reply_drafted
        │                                  │  ↑   ↑                    │     │
        ├─settle→ settled                  │  │   └──return_reply──────┘     approve_reply
        └─decline→ declined        transfer│  │receive                        ↓
                                           ↓  │                        reply_approved
                                       transferred                          │ send_reply
                                                                             ↓
                      reopened ←reopen─ closed ←close─ replied ←─────────────┘
                         └─resume→ in_handling

    any status still to do (registered … reply_approved, reopened) ─merge→ merged
        (a duplicate: Complaint.merged_into_id names the case that answers for both; complaints.corrections)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.exc import StaleDataError

from complaints.access import HANDLERS, OFFICERS
from complaints.models import CaseEvent, Complaint, Status
from core import audit, notify
from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.services import Conflict, Refused, ServiceError, clean_text
from organisation.models import Institution, Role, StaffUser


class Action(StrEnum):
    ACCEPT = "accept"
    SETTLE = "settle"
    DECLINE = "decline"
    ASSIGN = "assign"
    TRANSFER = "transfer"
    RECEIVE = "receive"
    DRAFT_REPLY = "draft_reply"
    RETURN_REPLY = "return_reply"
    APPROVE_REPLY = "approve_reply"
    SEND_REPLY = "send_reply"
    CLOSE = "close"
    REOPEN = "reopen"
    RESUME = "resume"
    MERGE = "merge"


@dataclass(frozen=True)
class Rule:
    sources: frozenset[Status]
    target: Status
    roles: frozenset[Role]
    # Handlers may act only on cases led by one of their departments.
    handler_needs_lead: bool = True


def _rule(sources, target, roles) -> Rule:
    return Rule(frozenset(sources), target, frozenset(roles))


TRANSITIONS: dict[Action, Rule] = {
    Action.ACCEPT: _rule({Status.REGISTERED}, Status.ACCEPTED, OFFICERS),
    Action.SETTLE: _rule({Status.REGISTERED}, Status.SETTLED, OFFICERS),
    Action.DECLINE: _rule({Status.REGISTERED}, Status.DECLINED, OFFICERS),
    Action.ASSIGN: _rule({Status.ACCEPTED}, Status.IN_HANDLING, OFFICERS),
    Action.TRANSFER: _rule({Status.IN_HANDLING}, Status.TRANSFERRED, OFFICERS | HANDLERS),
    Action.RECEIVE: _rule({Status.TRANSFERRED}, Status.IN_HANDLING, OFFICERS | HANDLERS),
    Action.DRAFT_REPLY: _rule({Status.IN_HANDLING}, Status.REPLY_DRAFTED, OFFICERS | HANDLERS),
    Action.RETURN_REPLY: _rule({Status.REPLY_DRAFTED}, Status.IN_HANDLING, OFFICERS),
    Action.APPROVE_REPLY: _rule({Status.REPLY_DRAFTED}, Status.REPLY_APPROVED, OFFICERS),
    Action.SEND_REPLY: _rule({Status.REPLY_APPROVED}, Status.REPLIED, OFFICERS),
    Action.CLOSE: _rule({Status.REPLIED}, Status.CLOSED, OFFICERS),
    Action.REOPEN: _rule({Status.CLOSED}, Status.REOPENED, OFFICERS),
    Action.RESUME: _rule({Status.REOPENED}, Status.IN_HANDLING, OFFICERS),
    Action.MERGE: _rule(Status.to_do(), Status.MERGED, OFFICERS),
}

ACTION_LABELS = {
    Action.ACCEPT: _l("受理"), Action.SETTLE: _l("当场办结"), Action.DECLINE: _l("不予受理"),
    Action.ASSIGN: _l("分派科室"), Action.TRANSFER: _l("转办"), Action.RECEIVE: _l("接收转办"),
    Action.DRAFT_REPLY: _l("提交答复草稿"), Action.RETURN_REPLY: _l("退回答复"),
    Action.APPROVE_REPLY: _l("审核通过答复"), Action.SEND_REPLY: _l("发送答复"), Action.CLOSE: _l("办结"),
    Action.REOPEN: _l("重新处理"), Action.RESUME: _l("恢复处理"), Action.MERGE: _l("并入其他案件"),
}


class WorkflowError(ServiceError):
    """A transition or a case rule refused the action; the message is for the user."""


class NotAllowed(WorkflowError, Refused):
    """This user may not take this action on this case as it stands (403)."""


STALE_MESSAGE = _l("该案件刚被其他人更新，请刷新页面查看最新情况后再操作。")


class ConcurrentChange(WorkflowError, Conflict):
    """The page the user acted on is older than the case (the views answer 409 with the case as it is now)."""

    def __init__(self) -> None:
        super().__init__(str(STALE_MESSAGE))


def check_version(complaint: Complaint, expected_version: int | None) -> None:
    """Refuse to act on a page older than the case (optimistic locking for changes that are not transitions)."""
    if expected_version is not None and expected_version != complaint.version:
        raise ConcurrentChange()


def flush_case() -> None:
    """Flush, turning a lost optimistic-lock race into the user's 'updated by someone else' message."""
    try:
        db.session.flush()
    except StaleDataError:
        db.session.rollback()
        raise ConcurrentChange() from None


def touch(complaint: Complaint) -> None:
    """Bump the case's version for a change that is not a status change, so stale pages are refused."""
    complaint.updated_at = utcnow()
    flush_case()


def may(user: StaffUser, complaint: Complaint, action: Action) -> bool:
    """Whether ``user`` may take ``action`` on ``complaint`` in its current status."""
    rule = TRANSITIONS[action]
    if Status(complaint.status) not in rule.sources:
        return False
    if user.institution_id != complaint.institution_id and not user.has_role(Role.PLATFORM_ADMIN):
        return False
    roles = user.roles
    if roles & (rule.roles - HANDLERS) or Role.PLATFORM_ADMIN in roles:
        return True
    if roles & rule.roles & HANDLERS:
        return not rule.handler_needs_lead or complaint.lead_department_id in user.department_ids
    return False


def allowed_actions(user: StaffUser, complaint: Complaint) -> list[Action]:
    return [action for action in TRANSITIONS if may(user, complaint, action)]


def transition(complaint: Complaint, action: Action, *, actor: StaffUser, expected_version: int | None = None,
               note: str = "", data: dict[str, Any] | None = None) -> Complaint:
    """Move a case along one edge of the state machine, checked, audited and safe against a stale page."""
    check_version(complaint, expected_version)
    rule = TRANSITIONS[action]
    before = Status(complaint.status)
    if before not in rule.sources:
        raise NotAllowed(gettext("案件当前状态为“%(status)s”，不能执行“%(action)s”。", status=before.label,
                                 action=str(ACTION_LABELS[action])))
    if not may(actor, complaint, action):
        raise NotAllowed(gettext("您没有权限对该案件执行“%(action)s”。", action=str(ACTION_LABELS[action])))
    complaint.status = rule.target
    complaint.events.append(CaseEvent(actor_id=actor.id, actor_label=actor.username, action=action.value,
                                      from_status=before.value, to_status=rule.target.value, note=note,
                                      data=data or {}))
    flush_case()
    record(actor, f"complaint.{action.value}", complaint,
           {"from": before.value, "to": rule.target.value, **({"note": note[:200]} if note else {})})
    return complaint


# Rules every case service shares --------------------------------------------------------

def require_text(value: str | None, field_name: str, message: str) -> str:
    """Text the user must give (``message`` when they gave none)."""
    return clean_text(value, field=field_name, required=message)


def require_open(complaint: Complaint) -> None:
    if not complaint.is_open:
        raise NotAllowed(gettext("案件当前状态为“%(status)s”，不能执行此操作。", status=Status(complaint.status).label))


def text_complainant(complaint: Complaint, subject: str, body: str, *, kind: str,
                     meta: dict[str, Any] | None = None) -> bool:
    """Text the complainant (core.notify.send_to_person); False when the case has no number.

    Every text to a complainant goes out here, so each carries the hospital's SMS signature
    (core.notify.sms_signature) in front of ``body``: the decline notice, the reply, the feedback link, the
    refused reopening.
    """
    phone = (complaint.complainant_phone or "").strip()
    if not phone:
        return False
    institution = db.session.get_one(Institution, complaint.institution_id)
    notify.send_to_person(phone, subject, notify.sms_signature(institution.display_name) + body, kind=kind,
                          channel="sms", meta={"complaint_id": complaint.id, **(meta or {})})
    return True


# Timeline entries that are not transitions (log_event), by their action name.
EVENT_LABELS = {
    "registered": _l("登记"), "emergency": _l("标记为紧急"), "emergency_alerted": _l("紧急预警已发出"),
    "emergency_alert_failed": _l("紧急预警发送失败"), "lookup_code_reissued": _l("重新生成查询码"),
    "safety_reported": _l("投诉人选择了医疗质量安全（待核实）"), "safety_report_notified": _l("已通知投诉管理员核实"),
    "attachments_added": _l("补充附件"),
    "deadline_set": _l("办理期限"), "deadline_recomputed": _l("期限重算"), "pause": _l("暂停计时"),
    "resume_clock": _l("恢复计时"), "extension_requested": _l("申请延期"), "extension_approved": _l("批准延期"),
    "extension_rejected": _l("不批准延期"), "co_answer": _l("协办意见"), "co_waived": _l("放行协办"),
    "co_added": _l("增加协办"), "remind": _l("到期提醒"), "supervise": _l("督办"),
    "decline_notice_sent": _l("已告知投诉人"),
    "reply_revised": _l("提交答复新版本"), "feedback_opened": _l("发出回访链接"), "feedback_answered": _l("投诉人评价"),
    "reopen_refused": _l("不予重办"), "rectification_added": _l("登记整改"), "rectification_done": _l("整改完成待验证"),
    "rectification_verified": _l("整改验证销号"), "rectification_returned": _l("退回整改"),
    "refund_requested": _l("申请退费"), "refund_approved": _l("批准退费"), "refund_rejected": _l("不批准退费"),
    "refund_completed": _l("已退费"),
    "edited": _l("更正登记信息"), "merged_in": _l("合并重复投诉"),
}


def event_label(action: str) -> str:
    """A timeline entry's label: a transition's or another event's, else the action name itself."""
    try:
        return str(ACTION_LABELS[Action(action)])
    except ValueError:
        return str(EVENT_LABELS.get(action, action))


def actor_name(label: str | None) -> str:
    """How the timeline shows an actor that is not a staff member: as the audit log does
    (complaints.audit_labels.ACTORS names the complaint office's)."""
    return audit.actor_name(label or "system")


def log_event(complaint: Complaint, action: str, *, actor: Any, note: str = "", data: dict[str, Any] | None = None
              ) -> CaseEvent:
    """Add a timeline entry that is not a status change (a note, a pause, an extension, a reminder)."""
    event = CaseEvent(actor_id=getattr(actor, "id", None), actor_label=getattr(actor, "username", str(actor)),
                      action=action, note=note, data=data or {})
    complaint.events.append(event)
    return event
