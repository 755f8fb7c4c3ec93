"""Complaint cases, the departments that handle them, their clock and timeline."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import InstitutionScoped, TimestampMixin, UTCDateTime, utcnow
from core.extensions import db
from organisation.models import Department, LabelledEnum, StaffUser, Touchpoint


class Channel(LabelledEnum):
    SELF_SERVICE = "self_service"
    WALK_IN = "walk_in"
    PHONE = "phone"
    LETTER = "letter"
    EMAIL = "email"
    HOTLINE_12345 = "hotline_12345"
    SURVEY_ALERT = "survey_alert"

    @classmethod
    def labels(cls):
        return {"self_service": _l("患者自助（扫码/网页）"), "walk_in": _l("来访"), "phone": _l("来电"),
                "letter": _l("来信"), "email": _l("电子邮件"), "hotline_12345": _l("12345 热线转办"),
                "survey_alert": _l("满意度评价转投诉")}


class Status(LabelledEnum):
    REGISTERED = "registered"
    ACCEPTED = "accepted"
    IN_HANDLING = "in_handling"
    TRANSFERRED = "transferred"
    REPLY_DRAFTED = "reply_drafted"
    REPLY_APPROVED = "reply_approved"
    REPLIED = "replied"
    CLOSED = "closed"
    DECLINED = "declined"
    SETTLED = "settled"
    REOPENED = "reopened"

    @classmethod
    def labels(cls):
        return {"registered": _l("已登记"), "accepted": _l("已受理"), "in_handling": _l("处理中"),
                "transferred": _l("转办中"), "reply_drafted": _l("答复待审核"), "reply_approved": _l("答复已审核"),
                "replied": _l("已答复"), "closed": _l("已办结"), "declined": _l("不予受理"),
                "settled": _l("当场办结"), "reopened": _l("已重新处理")}

    @classmethod
    def open_statuses(cls) -> set[Status]:
        """Statuses whose clock runs (the case is awaiting an answer to the complainant)."""
        return {cls.ACCEPTED, cls.IN_HANDLING, cls.TRANSFERRED, cls.REPLY_DRAFTED, cls.REPLY_APPROVED,
                cls.REOPENED}


class DeclineReason(LabelledEnum):
    IN_COURT = "in_court"
    IN_MEDIATION = "in_mediation"
    BEFORE_AUTHORITY = "before_authority"
    REPEATED = "repeated"
    NO_SUBJECT = "no_subject"
    CRIMINAL = "criminal"

    @classmethod
    def labels(cls):
        return {"in_court": _l("已向人民法院起诉"), "in_mediation": _l("已申请人民调解"),
                "before_authority": _l("已由卫生健康主管部门或信访部门受理"),
                "repeated": _l("重复投诉且无新的事实和证据"), "no_subject": _l("没有明确的投诉对象和具体事实"),
                "criminal": _l("属于治安案件或刑事案件")}


class PauseReason(LabelledEnum):
    AWAITING_MATERIAL = "awaiting_material"
    MEDIATION = "mediation"
    EXPERT_ASSESSMENT = "expert_assessment"

    @classmethod
    def labels(cls):
        return {"awaiting_material": _l("待投诉人补充材料"), "mediation": _l("调解中"),
                "expert_assessment": _l("鉴定中")}


class Category(db.Model):
    """An editable complaint category; rows without an institution are the defaults."""

    __tablename__ = "complaint_category"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("institution.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(40))
    # Complaints of this category are quality-and-safety by default (alert at once).
    safety: Mapped[bool] = mapped_column(Boolean, default=False)
    # Price complaints may need a refund record.
    charges: Mapped[bool] = mapped_column(Boolean, default=False)
    sort: Mapped[int] = mapped_column(Integer, default=100)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def audit_label(self) -> str:
        return self.name


# Status.open_statuses() as SQL, for the partial index of the officer's queue (keep the two in step).
OPEN_STATUS_SQL = ("status IN ('accepted', 'in_handling', 'transferred', 'reply_drafted', 'reply_approved', "
                   "'reopened')")
# Emergencies whose notice is still owed: what the minutely sweep looks for (complaints.tasks).
EMERGENCY_UNNOTIFIED_SQL = "safety_emergency AND emergency_notified_at IS NULL"


class Complaint(InstitutionScoped, TimestampMixin, db.Model):
    __tablename__ = "complaint"
    __table_args__ = (
        UniqueConstraint("institution_id", "case_number"),
        Index("ix_complaint_inst_status_due", "institution_id", "status", "due_at"),
        Index("ix_complaint_inst_received", "institution_id", "received_at"),
        # Cases awaiting triage (status 'registered'), oldest first: the queue's triage panel.
        Index("ix_complaint_inst_status_received", "institution_id", "status", "received_at"),
        # The officer's queue: open cases by due date, read in index order (LIMIT 50 stops early).
        Index("ix_complaint_open_due", "institution_id", "due_at", postgresql_where=text(OPEN_STATUS_SQL),
              sqlite_where=text(OPEN_STATUS_SQL)),
        Index("ix_complaint_emergency_unnotified", "id", postgresql_where=text(EMERGENCY_UNNOTIFIED_SQL),
              sqlite_where=text(EMERGENCY_UNNOTIFIED_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(24))
    # The complainant checks progress with the case number and this code (stored hashed).
    lookup_code_hash: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[Channel] = mapped_column(String(20))
    channel_ref: Mapped[str] = mapped_column(String(60), default="")  # e.g. the 12345 work order number
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # 首诉负责: whoever registered it stays responsible until the case closes.
    first_contact_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("complaint_category.id"))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoint.id"))
    survey_response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_response.id"))
    # Keyed hash of the client's submission id: a double tap or a retry finds the case instead of adding one.
    submission_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    wish: Mapped[str] = mapped_column(Text, default="")            # 诉求
    staff_involved: Mapped[str] = mapped_column(String(200), default="")
    # Complainant contact: the least needed to answer, masked in every list.
    complainant_name: Mapped[str | None] = mapped_column(String(40))
    complainant_phone: Mapped[str | None] = mapped_column(String(20))
    complainant_relation: Mapped[str] = mapped_column(String(16), default="self")
    status: Mapped[Status] = mapped_column(String(20), default=Status.REGISTERED)
    lead_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    safety_emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the emergency notice went out; claimed by one conditional UPDATE so that it goes out once.
    emergency_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(String(20))
    decline_notice: Mapped[str] = mapped_column(Text, default="")
    settlement_note: Mapped[str] = mapped_column(Text, default="")
    # The clock: how the deadline was computed is kept with the case.
    deadline_rule: Mapped[str | None] = mapped_column(String(20))
    working_days: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_date: Mapped[Any | None] = mapped_column(Date)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_trace: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(20))
    reminded_for: Mapped[Any | None] = mapped_column(Date)       # due date a reminder was sent for
    escalated_for: Mapped[Any | None] = mapped_column(Date)      # due date an escalation (督办) was made for
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved: Mapped[bool | None] = mapped_column(Boolean)        # 解决: the officer's judgement at closing
    satisfaction: Mapped[str | None] = mapped_column(String(16))  # satisfied / basically / unsatisfied
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("complaint.id"))
    # Optimistic lock: two officers acting on one case at once cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    category: Mapped[Category | None] = relationship()
    touchpoint: Mapped[Touchpoint | None] = relationship()
    lead_department: Mapped[Department | None] = relationship()
    first_contact: Mapped[StaffUser | None] = relationship()
    # The departments the complaint is about (涉及科室), as registered; not who handles it.
    concerned_departments: Mapped[list[Department]] = relationship(secondary="complaint_concerned_department",
                                                                   order_by="Department.code")
    departments: Mapped[list[CaseDepartment]] = relationship(back_populates="complaint",
                                                                cascade="all, delete-orphan",
                                                                order_by="CaseDepartment.id")
    events: Mapped[list[CaseEvent]] = relationship(back_populates="complaint", cascade="all, delete-orphan",
                                                     order_by="CaseEvent.id")

    @property
    def audit_label(self) -> str:
        return self.case_number

    @property
    def is_open(self) -> bool:
        return Status(self.status) in Status.open_statuses()


complaint_concerned_department = Table(
    "complaint_concerned_department",
    db.metadata,
    Column("complaint_id", Integer, ForeignKey("complaint.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", Integer, ForeignKey("department.id"), primary_key=True, index=True),
)


class CaseCounter(db.Model):
    """The last case number issued per institution and year; its row lock serialises numbering."""

    __tablename__ = "complaint_case_counter"

    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class CaseDepartment(db.Model):
    """A department on a case: the lead (主办) or a co-handler (协办) with its own sub-deadline."""

    __tablename__ = "complaint_department"
    __table_args__ = (
        UniqueConstraint("complaint_id", "department_id"),
        # A department's queue: the open cases it co-handles (the lead is Complaint.lead_department_id).
        Index("ix_complaint_department_co", "department_id", "complaint_id",
              postgresql_where=text("role = 'co' AND active"), sqlite_where=text("role = 'co' AND active")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))   # lead | co
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The officer may let the lead reply without this co-handler's answer, with a reason (check C13).
    waived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waived_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    waive_reason: Mapped[str] = mapped_column(Text, default="")

    complaint: Mapped[Complaint] = relationship(back_populates="departments")
    department: Mapped[Department] = relationship()


class CaseEvent(db.Model):
    """The case's timeline, shown to staff: every transition and note, append-only."""

    __tablename__ = "complaint_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    actor_label: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    complaint: Mapped[Complaint] = relationship(back_populates="events")


class CasePause(db.Model):
    """A period when the clock stood still (awaiting material, mediation, expert assessment)."""

    __tablename__ = "complaint_pause"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class Extension(db.Model):
    """A request for more time: needs a reason and an approval by someone else."""

    __tablename__ = "complaint_extension"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    extra_days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | approved | rejected
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(Text, default="")


class Attachment(db.Model):
    """Evidence a complainant or officer attached (kept in the database: web processes stay stateless)."""

    __tablename__ = "complaint_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(db.LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class RoutingRule(InstitutionScoped, db.Model):
    """Proposes the handling department: first matching rule by priority wins."""

    __tablename__ = "complaint_routing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("complaint_category.id"))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoint.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))  # a department concerned
    keywords: Mapped[str] = mapped_column(String(200), default="")                 # any of, separated by ;
    target_department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    target_department: Mapped[Department] = relationship(foreign_keys=[target_department_id])

    @property
    def audit_label(self) -> str:
        return f"rule {self.id}"


class ComplaintSettings(db.Model):
    """Per-institution targets, defaulting to the national rules."""

    __tablename__ = "complaint_settings"

    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    standard_days: Mapped[int] = mapped_column(Integer, default=5)   # 情况较复杂，需调查、核实
    complex_days: Mapped[int] = mapped_column(Integer, default=10)   # 涉及多个科室，需组织、协调
    reminder_days_before: Mapped[int] = mapped_column(Integer, default=1)
    escalate_after_days: Mapped[int] = mapped_column(Integer, default=0)  # working days overdue before 督办
    case_prefix: Mapped[str] = mapped_column(String(8), default="TS")
    feedback_valid_days: Mapped[int] = mapped_column(Integer, default=7)

    @property
    def id(self) -> int:
        return self.institution_id

    @property
    def audit_label(self) -> str:
        return "complaint settings"
