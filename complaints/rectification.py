"""What a complaint changes: corrective actions (整改, 挂账销号) and refunds for price complaints.

Rectification. 003 (PDCA): "对活动中没有完成的任务，再次梳理，采取“挂账销号”制度，确定跟踪整改
落实的时间和责任人"; 000 II.11: "制定改进方案，限时整改落实，结果及时回应当事人和社会公众".
Each corrective action is put on the books with an owner and a due date
(挂账), the owner (or an officer) records what was done with evidence, and an
officer who is neither the owner nor the one who completed it verifies it
(销号). An officer may send it back when the evidence does not hold.

Refunds. 003 item 30: "有价格投诉和退费处理程序，受理并做好相关记录，无分解收费、重复收费等
违规收费行为". For a complaint in a charges category (Category.charges) a
refund is requested with an amount and a reason, approved or refused by a
complaint officer other than the requester, and completed with the payment
reference; every step is on the case timeline and in the audit trail.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, cast

from flask_babel import gettext
from sqlalchemy import Select, or_, select, update

from complaints.access import is_officer, may_draft, may_work_case
from complaints.models import (
    Category,
    Complaint,
    Rectification,
    RectificationStatus,
    Refund,
    RefundStatus,
    Status,
)
from complaints.replies import check_writable
from complaints.workflow import ConcurrentChange, NotAllowed, WorkflowError, log_event
from core.audit import record
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from core.services import clean_text
from organisation.models import Department, Institution, StaffUser
from organisation.scope import GRANTS, Permission, department_scope
from organisation.services import staff_with_roles

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

MAX_TEXT = 2000
MAX_AMOUNT = Decimal("9999999999.99")  # Numeric(12, 2)
AMOUNT_PATTERN = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,2})?$")


class RemedyError(WorkflowError):
    """A rectification or refund rule was broken; the message is for the user."""


def _text(value: str | None, *, field: str, empty: str, limit: int = MAX_TEXT) -> str:
    return clean_text(value, field=field, label=gettext("内容"), limit=limit, required=empty, error=RemedyError)


def _move(row: Rectification | Refund, expected: str, **values) -> None:
    """Change the row only if it is still in ``expected`` status: of two people acting at once, one wins."""
    model = type(row)
    result = cast("CursorResult[Any]",  # an UPDATE's result carries its row count
                  db.session.execute(update(model).where(model.id == row.id, model.status == expected)
                                     .values(**values).execution_options(synchronize_session=False)))
    db.session.refresh(row)  # read back what the UPDATE wrote (or what the other person wrote)
    if result.rowcount != 1:
        raise ConcurrentChange()


def _complaint(row: Rectification | Refund) -> Complaint:
    return db.session.get_one(Complaint, row.complaint_id)


# Rectification ---------------------------------------------------------------------------

def rectifications_for(complaint: Complaint) -> list[Rectification]:
    return list(db.session.scalars(select(Rectification).where(Rectification.complaint_id == complaint.id)
                                   .order_by(Rectification.id)))


def is_overdue(rectification: Rectification, today: date) -> bool:
    return rectification.status == RectificationStatus.OPEN and rectification.due_date < today


def may_own_rectification(user: StaffUser) -> bool:
    """Owners must be able to open the case's pages to report completion: handlers, officers, admins."""
    return bool(user.roles & GRANTS[Permission.HANDLE_COMPLAINTS])


def possible_owners(institution_id: int) -> list[StaffUser]:
    """The active staff of an institution who may own a rectification (may_own_rectification), by name."""
    staff = staff_with_roles(institution_id, *GRANTS[Permission.HANDLE_COMPLAINTS])
    return sorted(staff, key=lambda u: (u.display_name, u.username))


def add_rectification(complaint: Complaint, action: str, owner: StaffUser, due_date: date,
                      department: Department | None, *, actor: StaffUser, today: date | None = None) -> Rectification:
    """Put a corrective action on the books (挂账) with an owner and a due date, not in the past."""
    today = today or local_today()
    check_writable(complaint)
    if not may_draft(actor, complaint):
        raise NotAllowed(gettext("只有主办科室的处理人或投诉管理人员可以登记整改措施。"))
    if Status(complaint.status) == Status.DECLINED:
        raise RemedyError(gettext("不予受理的投诉不登记整改措施。"))
    action = _text(action, field="action", empty=gettext("请填写整改措施。"))
    if owner is None or owner.institution_id != complaint.institution_id or not owner.active \
            or not may_own_rectification(owner):
        raise RemedyError(gettext("请选择本院在职人员作为整改责任人。"), "owner_id")
    if department is not None and department.institution_id != complaint.institution_id:
        raise RemedyError(gettext("请选择本院的科室。"), "department_id")
    if due_date < today:
        raise RemedyError(gettext("整改期限不能早于今天。"), "due_date")
    rectification = Rectification(complaint_id=complaint.id, institution_id=complaint.institution_id,
                                  department_id=department.id if department is not None else None, action=action,
                                  owner_id=owner.id, due_date=due_date, status=RectificationStatus.OPEN,
                                  evidence="", created_at=utcnow())
    db.session.add(rectification)
    db.session.flush()
    data = {"rectification": rectification.id, "owner": owner.id, "due_date": due_date.isoformat(),
            "department": rectification.department_id}
    log_event(complaint, "rectification_added", actor=actor, note=action, data=data)
    record(actor, "complaint.rectification.add", complaint, data)
    return rectification


def complete_rectification(rectification: Rectification, evidence: str, *, actor: StaffUser) -> Rectification:
    """The owner (or an officer) records what was done, with evidence; it then awaits verification."""
    complaint = _complaint(rectification)
    if actor.id != rectification.owner_id and not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有整改责任人或投诉管理人员可以填报整改完成情况。"))
    if rectification.status != RectificationStatus.OPEN:
        raise RemedyError(gettext("该整改措施不在整改中，不能再填报完成情况。"))
    evidence = _text(evidence, field="evidence", empty=gettext("请填写整改完成情况和佐证材料说明。"))
    _move(rectification, RectificationStatus.OPEN, status=RectificationStatus.DONE, evidence=evidence,
          done_at=utcnow(), done_by_id=actor.id)
    data = {"rectification": rectification.id}
    log_event(complaint, "rectification_done", actor=actor, note=evidence, data=data)
    record(actor, "complaint.rectification.complete", complaint, data)
    return rectification


def _verifier(rectification: Rectification, actor: StaffUser) -> Complaint:
    complaint = _complaint(rectification)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理人员可以验证整改。"))
    if rectification.status != RectificationStatus.DONE:
        raise RemedyError(gettext("该整改措施尚未填报完成，不能验证。"))
    if actor.id in (rectification.owner_id, rectification.done_by_id):
        raise NotAllowed(gettext("整改须由责任人和填报人以外的人员验证。"))
    return complaint


def verify_rectification(rectification: Rectification, *, actor: StaffUser) -> Rectification:
    """An officer who is neither the owner nor the one who completed it verifies and closes it (销号)."""
    complaint = _verifier(rectification, actor)
    _move(rectification, RectificationStatus.DONE, status=RectificationStatus.VERIFIED, verified_by_id=actor.id,
          verified_at=utcnow())
    data = {"rectification": rectification.id}
    log_event(complaint, "rectification_verified", actor=actor, data=data)
    record(actor, "complaint.rectification.verify", complaint, data)
    return rectification


def return_rectification(rectification: Rectification, note: str, *, actor: StaffUser) -> Rectification:
    """The verifier finds the evidence insufficient and sends the action back to the owner, saying why."""
    note = _text(note, field="note", empty=gettext("请填写退回原因。"))
    complaint = _verifier(rectification, actor)
    _move(rectification, RectificationStatus.DONE, status=RectificationStatus.OPEN, done_at=None)
    data = {"rectification": rectification.id}
    log_event(complaint, "rectification_returned", actor=actor, note=note, data=data)
    record(actor, "complaint.rectification.return", complaint, data)
    return rectification


def open_rectifications(institution: Institution, *, user: StaffUser, status: str = "open") -> Select:
    """The institution's rectifications not yet verified (or by status), oldest due first; handlers see their own."""
    stmt = (select(Rectification).where(Rectification.institution_id == institution.id)
            .order_by(Rectification.due_date, Rectification.id))
    if status == "open":
        stmt = stmt.where(Rectification.status != RectificationStatus.VERIFIED)
    elif status in {s.value for s in RectificationStatus}:
        stmt = stmt.where(Rectification.status == status)

    scope = department_scope(user, institution)
    if scope is not None:  # a department handler: the actions they own or their departments carry
        stmt = stmt.where(or_(Rectification.owner_id == user.id, Rectification.department_id.in_(scope or {-1})))
    return stmt


# Refunds ------------------------------------------------------------------------------------

def refunds_for(complaint: Complaint) -> list[Refund]:
    return list(db.session.scalars(select(Refund).where(Refund.complaint_id == complaint.id).order_by(Refund.id)))


def is_price_complaint(complaint: Complaint) -> bool:
    if complaint.category_id is None:
        return False
    category = db.session.get(Category, complaint.category_id)
    return bool(category is not None and category.charges)


def parse_amount(text: str | None) -> Decimal:
    """A refund amount in yuan as typed: digits with at most two decimals, more than zero."""
    # NFKC: full-width digits and punctuation from a Chinese input method become ASCII.
    text = unicodedata.normalize("NFKC", text or "").strip().replace(",", "")
    if text.startswith(("¥", "￥")):
        text = text[1:].strip()
    if not AMOUNT_PATTERN.match(text):
        raise RemedyError(gettext("请填写正确的金额（元），最多两位小数，例如 128.50。"), "amount")
    return check_amount(Decimal(text))


def check_amount(amount: Decimal) -> Decimal:
    try:
        ok = isinstance(amount, Decimal) and amount.is_finite() and amount > 0
    except InvalidOperation:
        ok = False
    if not ok:
        raise RemedyError(gettext("退费金额须大于 0 元。"), "amount")
    if amount > MAX_AMOUNT:
        raise RemedyError(gettext("退费金额过大，请核对。"), "amount")
    exponent = amount.as_tuple().exponent  # an int: the amount is finite
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise RemedyError(gettext("退费金额最多保留两位小数。"), "amount")
    return amount.quantize(Decimal("0.01"))


def request_refund(complaint: Complaint, amount: Decimal, reason: str, *, actor: StaffUser) -> Refund:
    """A refund is requested for a price complaint, with an amount above zero (two decimals at most) and a reason."""
    check_writable(complaint)
    if not may_work_case(actor, complaint):
        raise NotAllowed(gettext("您没有权限为该案件申请退费。"))
    if not is_price_complaint(complaint):
        raise RemedyError(gettext("只有收费价格类投诉可以申请退费。"))
    if Status(complaint.status) == Status.DECLINED:
        raise RemedyError(gettext("不予受理的投诉不能申请退费。"))
    amount = check_amount(amount)
    reason = _text(reason, field="reason", empty=gettext("请填写退费原因。"))
    refund = Refund(complaint_id=complaint.id, institution_id=complaint.institution_id, amount=amount, reason=reason,
                    status=RefundStatus.REQUESTED, requested_by_id=actor.id, requested_at=utcnow(),
                    decision_note="", payment_ref="")
    db.session.add(refund)
    db.session.flush()
    data = {"refund": refund.id, "amount": str(amount)}
    log_event(complaint, "refund_requested", actor=actor, note=reason, data=data)
    record(actor, "complaint.refund.request", complaint, data)
    return refund


def decide_refund(refund: Refund, approve: bool, note: str, *, actor: StaffUser) -> Refund:
    """A complaint officer other than the requester approves or refuses the refund (refusing needs a note)."""
    complaint = _complaint(refund)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理人员可以审批退费。"))
    if refund.status != RefundStatus.REQUESTED:
        raise RemedyError(gettext("该退费申请已审批。"))
    if actor.id == refund.requested_by_id:
        raise NotAllowed(gettext("退费须由申请人以外的人员审批。"))
    note = clean_text(note, field="note", label=gettext("内容"), limit=MAX_TEXT, error=RemedyError,
                      required=None if approve else gettext("不批准退费时请写明理由。"))
    _move(refund, RefundStatus.REQUESTED, status=RefundStatus.APPROVED if approve else RefundStatus.REJECTED,
          decided_by_id=actor.id, decided_at=utcnow(), decision_note=note)
    data = {"refund": refund.id, "approved": bool(approve), "amount": str(refund.amount)}
    log_event(complaint, "refund_approved" if approve else "refund_rejected", actor=actor, note=note, data=data)
    record(actor, "complaint.refund.decide", complaint, data)
    return refund


def complete_refund(refund: Refund, payment_ref: str, *, actor: StaffUser) -> Refund:
    """The approved refund is paid out and recorded with its payment reference (退费凭证号)."""
    complaint = _complaint(refund)
    if not may_work_case(actor, complaint):
        raise NotAllowed(gettext("您没有权限办理该退费。"))
    if refund.status != RefundStatus.APPROVED:
        raise RemedyError(gettext("只有已批准的退费可以办理。"))
    payment_ref = _text(payment_ref, field="payment_ref", empty=gettext("请填写退费凭证号或交易流水号。"), limit=60)
    _move(refund, RefundStatus.APPROVED, status=RefundStatus.COMPLETED, payment_ref=payment_ref,
          completed_at=utcnow(), completed_by_id=actor.id)
    data = {"refund": refund.id, "amount": str(refund.amount)}
    log_event(complaint, "refund_completed", actor=actor, data=data)
    record(actor, "complaint.refund.complete", complaint, data)
    return refund
