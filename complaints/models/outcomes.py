"""What a case produces: replies, the complainant's feedback, rectifications, refunds."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from complaints.models.cases import Satisfaction
from core.db import EnumText, UTCDateTime, utcnow
from core.enums import LabelledEnum
from core.extensions import db
from organisation.models import Department, StaffUser


class ReplyStatus(LabelledEnum):
    DRAFT = "draft", _l("草稿")
    SUBMITTED = "submitted", _l("待审核")
    APPROVED = "approved", _l("已审核")
    RETURNED = "returned", _l("已退回")
    SENT = "sent", _l("已发送")


class ReplyVia(LabelledEnum):
    SMS = "sms", _l("短信")
    EMAIL = "email", _l("电子邮件")
    LETTER = "letter", _l("书面答复（打印）")


class ReopenStatus(LabelledEnum):
    """A 重办 request after an unhappy answer, and the officer's decision."""

    REQUESTED = "requested", _l("重办申请待处理")
    ACCEPTED = "accepted", _l("已重新办理")
    REFUSED = "refused", _l("重办申请未获同意")  # a status; 不予重办 is the officer's action


class Reply(db.Model):
    """One version of the answer to the complainant; approval by someone other than the drafter."""

    __tablename__ = "complaint_reply"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[ReplyStatus] = mapped_column(EnumText(ReplyStatus, 12), default=ReplyStatus.DRAFT)
    drafted_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    drafted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_via: Mapped[str] = mapped_column(String(20), default="")

    drafted_by: Mapped[StaffUser] = relationship(foreign_keys=[drafted_by_id])
    reviewed_by: Mapped[StaffUser | None] = relationship(foreign_keys=[reviewed_by_id])


class Feedback(db.Model):
    """The complainant's one-question satisfaction answer after closing (tokenised link, no account)."""

    __tablename__ = "complaint_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[Satisfaction | None] = mapped_column(EnumText(Satisfaction, 16))
    comment: Mapped[str] = mapped_column(Text, default="")
    new_facts: Mapped[bool] = mapped_column(default=False)
    reopened: Mapped[bool] = mapped_column(default=False)
    # An unhappy answer asks for the case to be handled again (重办).
    reopen_status: Mapped[ReopenStatus | None] = mapped_column(EnumText(ReopenStatus, 12))
    reopen_note: Mapped[str] = mapped_column(Text, default="")      # the officer's reason for refusing
    reopen_decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    reopen_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Staff who recorded the answer from a follow-up call; None when the complainant used the link.
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    link_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)   # the SMS with the link went out


class RectificationStatus(LabelledEnum):
    OPEN = "open", _l("整改中")
    DONE = "done", _l("已完成待验证")
    VERIFIED = "verified", _l("已验证销号")


class Rectification(db.Model):
    """A corrective action (整改), tracked until verified and closed (挂账销号)."""

    __tablename__ = "complaint_rectification"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    action: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[RectificationStatus] = mapped_column(EnumText(RectificationStatus, 12),
                                                        default=RectificationStatus.OPEN)
    evidence: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))  # the verifier must be someone else
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[StaffUser] = relationship(foreign_keys=[owner_id])
    department: Mapped[Department | None] = relationship()


class RefundStatus(LabelledEnum):
    REQUESTED = "requested", _l("待审批")
    APPROVED = "approved", _l("已批准")
    REJECTED = "rejected", _l("未批准")
    COMPLETED = "completed", _l("已退费")


class Refund(db.Model):
    """A refund for a price complaint: amount, approval, completion (003 item 30)."""

    __tablename__ = "complaint_refund"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RefundStatus] = mapped_column(EnumText(RefundStatus, 12), default=RefundStatus.REQUESTED)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(Text, default="")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    payment_ref: Mapped[str] = mapped_column(String(60), default="")
