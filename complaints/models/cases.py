"""Complaint cases, the departments that handle them, their clock and timeline."""
from __future__ import annotations

from collections.abc import Iterable
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

from core.db import EnumText, InstitutionScoped, TimestampMixin, UTCDateTime, utcnow
from core.enums import LabelledEnum
from core.extensions import db
from organisation.models import Department, StaffUser, Touchpoint


class Channel(LabelledEnum):
    SELF_SERVICE = "self_service", _l("患者自助（扫码/网页）")
    WALK_IN = "walk_in", _l("来访")
    PHONE = "phone", _l("来电")
    LETTER = "letter", _l("来信")
    EMAIL = "email", _l("电子邮件")
    HOTLINE_12345 = "hotline_12345", _l("12345 热线转办")
    SURVEY_ALERT = "survey_alert", _l("满意度评价转投诉")


class Status(LabelledEnum):
    REGISTERED = "registered", _l("已登记")
    ACCEPTED = "accepted", _l("已受理")
    IN_HANDLING = "in_handling", _l("处理中")
    TRANSFERRED = "transferred", _l("转办中")
    REPLY_DRAFTED = "reply_drafted", _l("答复待审核")
    REPLY_APPROVED = "reply_approved", _l("答复已审核")
    REPLIED = "replied", _l("已答复")
    CLOSED = "closed", _l("已办结")
    DECLINED = "declined", _l("不予受理")
    SETTLED = "settled", _l("当场办结")
    REOPENED = "reopened", _l("已重新处理")
    # A duplicate merged into another case (merged_into_id), which answers for both (complaints.corrections).
    MERGED = "merged", _l("已合并")

    # Groups of statuses: each is written here once, and used by name everywhere else.

    @classmethod
    def open_statuses(cls) -> frozenset[Status]:
        """Accepted and awaiting the answer to the complainant: the case is being handled (paused, extended …).

        The answer clock runs from the receipt, so it also runs for a case awaiting triage: see to_do().
        """
        return frozenset({cls.ACCEPTED, cls.IN_HANDLING, cls.TRANSFERRED, cls.REPLY_DRAFTED, cls.REPLY_APPROVED,
                          cls.REOPENED})

    @classmethod
    def to_do(cls) -> frozenset[Status]:
        """What is still to do: the open statuses and the cases awaiting triage (the queues, the ledger's 'open').

        These are the statuses whose answer deadline runs (complaints.deadlines.past_due): the clock starts at
        receipt (民法典 第二百零一条), not at acceptance.
        """
        return cls.open_statuses() | {cls.REGISTERED}

    @classmethod
    def finished(cls) -> frozenset[Status]:
        """Nothing more happens to the case (a closed one may still be reopened)."""
        return frozenset({cls.CLOSED, cls.DECLINED, cls.SETTLED, cls.MERGED})

    @classmethod
    def done(cls) -> frozenset[Status]:
        """办结: closed after a reply, or settled on the spot (the ledger's 'done', the statistics' closed cases)."""
        return frozenset({cls.CLOSED, cls.SETTLED})

    @classmethod
    def no_deadline(cls) -> frozenset[Status]:
        """No answer is owed, so no deadline can be missed: declined, settled on the spot, or merged into another case
        (which owes the answer)."""
        return frozenset({cls.DECLINED, cls.SETTLED, cls.MERGED})

    @classmethod
    def values(cls, statuses: Iterable[Status]) -> tuple[str, ...]:
        """The stored values of ``statuses``, in the order the statuses are declared (stable SQL)."""
        wanted = set(statuses)
        return tuple(s.value for s in cls if s in wanted)


class DeadlineRule(LabelledEnum):
    """Which answer period a case is on (医疗机构投诉管理办法): 5 working days, or 10 when several departments
    must be coordinated (ComplaintSettings.standard_days / complex_days)."""

    STANDARD = "standard", _l("一般投诉（需调查核实）")
    COMPLEX = "complex", _l("多科室协调")


class DeclineReason(LabelledEnum):
    IN_COURT = "in_court", _l("已向人民法院起诉")
    IN_MEDIATION = "in_mediation", _l("已申请人民调解")
    BEFORE_AUTHORITY = "before_authority", _l("已由卫生健康主管部门或信访部门受理")
    REPEATED = "repeated", _l("重复投诉且无新的事实和证据")
    NO_SUBJECT = "no_subject", _l("没有明确的投诉对象和具体事实")
    CRIMINAL = "criminal", _l("属于治安案件或刑事案件")


class PauseReason(LabelledEnum):
    AWAITING_MATERIAL = "awaiting_material", _l("待投诉人补充材料")
    MEDIATION = "mediation", _l("调解中")
    EXPERT_ASSESSMENT = "expert_assessment", _l("鉴定中")


class CaseRole(LabelledEnum):
    """How a department takes part in a case (分派 / 协办)."""

    LEAD = "lead", _l("主办")
    CO = "co", _l("协办")


class ExtensionStatus(LabelledEnum):
    PENDING = "pending", _l("待审批")
    APPROVED = "approved", _l("已批准")
    REJECTED = "rejected", _l("未批准")  # a status; 不批准 is the button


class Relation(LabelledEnum):
    """Who filed the complaint, as the patient's what."""

    SELF = "self", _l("本人")
    FAMILY = "family", _l("家属")
    OTHER = "other", _l("其他")


class Satisfaction(LabelledEnum):
    """The complainant's answer to 「您对本次投诉的处理结果是否满意？」 (满意率 counts the first two)."""

    SATISFIED = "satisfied", _l("满意")
    BASICALLY = "basically", _l("基本满意")
    UNSATISFIED = "unsatisfied", _l("不满意")


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


# Status.open_statuses() as SQL, for the partial index of the officer's queue (migration 0004 wrote the same text).
OPEN_STATUS_SQL = "status IN (" + ", ".join(f"'{v}'" for v in Status.values(Status.open_statuses())) + ")"
# Emergencies whose notice is still owed: what the minutely sweep looks for (complaints.tasks).
EMERGENCY_UNNOTIFIED_SQL = "safety_emergency AND emergency_notified_at IS NULL"
# Public quality-and-safety reports whose officer's review notice is still owed (complaints.tasks).
SAFETY_REPORT_UNNOTIFIED_SQL = "safety_reported_at IS NOT NULL AND safety_report_notified_at IS NULL"


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
        Index("ix_complaint_safety_report_unnotified", "institution_id",
              postgresql_where=text(SAFETY_REPORT_UNNOTIFIED_SQL), sqlite_where=text(SAFETY_REPORT_UNNOTIFIED_SQL)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[str] = mapped_column(String(24))
    # The complainant checks progress with the case number and this code (stored hashed).
    lookup_code_hash: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[Channel] = mapped_column(EnumText(Channel, 20))
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
    # Complainant contact: the least needed to answer, masked in every list, and purged once the case has been
    # finished for the institution's retention period (complaints/retention.py), the rest of the case kept.
    complainant_name: Mapped[str | None] = mapped_column(String(40))
    complainant_phone: Mapped[str | None] = mapped_column(String(20))
    contact_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    complainant_relation: Mapped[Relation] = mapped_column(EnumText(Relation, 16), default=Relation.SELF)
    status: Mapped[Status] = mapped_column(EnumText(Status, 20), default=Status.REGISTERED)
    lead_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    safety_emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the emergency notice went out; claimed by one conditional UPDATE so that it goes out once.
    emergency_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A complainant's own form chose a quality-and-safety category: the officers on duty are told to check
    # it (grouped, complaints.tasks.notify_safety_reports); only an officer's flag pages leadership.
    safety_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    safety_report_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[DeclineReason | None] = mapped_column(EnumText(DeclineReason, 20))
    decline_notice: Mapped[str] = mapped_column(Text, default="")
    settlement_note: Mapped[str] = mapped_column(Text, default="")
    # The clock: how the deadline was computed is kept with the case.
    deadline_rule: Mapped[DeadlineRule | None] = mapped_column(EnumText(DeadlineRule, 20))
    working_days: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_date: Mapped[Any | None] = mapped_column(Date)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    deadline_trace: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    paused_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[PauseReason | None] = mapped_column(EnumText(PauseReason, 20))
    reminded_for: Mapped[Any | None] = mapped_column(Date)       # due date a reminder was sent for
    escalated_for: Mapped[Any | None] = mapped_column(Date)      # due date an escalation (督办) was made for
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved: Mapped[bool | None] = mapped_column(Boolean)        # 解决: the officer's judgement at closing
    satisfaction: Mapped[Satisfaction | None] = mapped_column(EnumText(Satisfaction, 16))
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
    role: Mapped[CaseRole] = mapped_column(EnumText(CaseRole, 8))
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
    from_status: Mapped[Status | None] = mapped_column(EnumText(Status, 20))
    to_status: Mapped[Status | None] = mapped_column(EnumText(Status, 20))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    complaint: Mapped[Complaint] = relationship(back_populates="events")


class CasePause(db.Model):
    """A period when the clock stood still (awaiting material, mediation, expert assessment)."""

    __tablename__ = "complaint_pause"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id", ondelete="CASCADE"), index=True)
    reason: Mapped[PauseReason] = mapped_column(EnumText(PauseReason, 20))
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
    status: Mapped[ExtensionStatus] = mapped_column(EnumText(ExtensionStatus, 12), default=ExtensionStatus.PENDING)
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


class PendingFile(InstitutionScoped, db.Model):
    """A file chosen on an intake form that came back with a mistake, kept (already checked and downscaled) for
    that form's submission until it is sent, removed, or expires (complaints.attachments)."""

    __tablename__ = "complaint_pending_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Keyed hash of the institution and the form's submission id (the id itself is never stored).
    submission_hash: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(db.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


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


class ComplaintSettings(db.Model):
    """Per-institution targets, defaulting to the national rules."""

    __tablename__ = "complaint_settings"

    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    standard_days: Mapped[int] = mapped_column(Integer, default=5)   # 情况较复杂，需调查、核实
    complex_days: Mapped[int] = mapped_column(Integer, default=10)   # 涉及多个科室，需组织、协调
    reminder_days_before: Mapped[int] = mapped_column(Integer, default=1)
    escalate_after_days: Mapped[int] = mapped_column(Integer, default=0)  # working days overdue before 督办
    # Working days after the day of receipt within which a registered case should be triaged (受理时限);
    # 0 = the same day. A service target shown in the queue, not a legal deadline.
    triage_days: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    case_prefix: Mapped[str] = mapped_column(String(8), default="TS")
    feedback_valid_days: Mapped[int] = mapped_column(Integer, default=7)
    # Days after a case is finished before the complainant's name and phone are purged (complaints/retention.py);
    # cases that are or may become a medical dispute (医疗纠纷) keep them for dispute_retention_days.
    complainant_retention_days: Mapped[int] = mapped_column(Integer, default=365)
    dispute_retention_days: Mapped[int] = mapped_column(Integer, default=1095)

    @property
    def id(self) -> int:
        return self.institution_id
