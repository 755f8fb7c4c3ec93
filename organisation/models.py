"""Regions, institutions, departments, touchpoints and staff."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import EnumText, InstitutionScoped, TimestampMixin, UTCDateTime
from core.enums import LabelledEnum
from core.extensions import db


class RegionLevel(LabelledEnum):
    PROVINCE = "province", _l("省级")
    CITY = "city", _l("市级")
    COUNTY = "county", _l("县级")


class InstitutionLevel(LabelledEnum):
    TERTIARY = "tertiary", _l("三级"), {"三级"}
    SECONDARY = "secondary", _l("二级"), {"二级"}
    PRIMARY = "primary", _l("一级"), {"一级"}
    GRASSROOTS = "grassroots", _l("基层"), {"基层"}


class InstitutionGrade(LabelledEnum):
    A = "a", _l("甲等")
    B = "b", _l("乙等")
    C = "c", _l("丙等")
    UNGRADED = "ungraded", _l("未定等")


class InstitutionCategory(LabelledEnum):
    GENERAL = "general", _l("综合医院"), {"综合"}
    TCM = "tcm", _l("中医医院"), {"中医"}
    INTEGRATED = "integrated", _l("中西医结合医院")
    SPECIALTY = "specialty", _l("专科医院"), {"专科"}
    MATERNAL_CHILD = "maternal_child", _l("妇幼保健院"), {"妇幼"}
    COMMUNITY = "community", _l("社区卫生服务中心")
    TOWNSHIP = "township", _l("乡镇卫生院")
    OTHER = "other", _l("其他")


class DepartmentKind(LabelledEnum):
    CLINICAL = "clinical", _l("临床科室"), {"临床"}
    MEDICAL_TECH = "medical_tech", _l("医技科室"), {"医技"}
    ADMINISTRATIVE = "administrative", _l("行政后勤"), {"行政", "后勤"}


class TouchpointKind(LabelledEnum):
    WINDOW = "window", _l("服务窗口"), {"窗口"}
    CLINIC = "clinic", _l("诊室"), {"门诊"}
    WARD = "ward", _l("病区")
    DISCHARGE = "discharge", _l("出院结算处"), {"出院"}
    OTHER = "other", _l("其他")


class Role(LabelledEnum):
    PLATFORM_ADMIN = "platform_admin", _l("平台管理员")
    REGIONAL_ADMIN = "regional_admin", _l("区域管理员")
    INSTITUTION_ADMIN = "institution_admin", _l("机构管理员"), {"管理员"}
    COMPLAINT_OFFICER = "complaint_officer", _l("投诉管理员"), {"投诉专员"}
    DEPARTMENT_HANDLER = "department_handler", _l("科室处理人"), {"科室负责人", "处理人"}
    FOLLOWUP_NURSE = "followup_nurse", _l("随访护士"), {"随访员"}
    LEADERSHIP = "leadership", _l("院领导"), {"领导"}

    @classmethod
    def institution_roles(cls) -> list[Role]:
        return [cls.INSTITUTION_ADMIN, cls.COMPLAINT_OFFICER, cls.DEPARTMENT_HANDLER,
                cls.FOLLOWUP_NURSE, cls.LEADERSHIP]


class Region(TimestampMixin, db.Model):
    __tablename__ = "region"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    level: Mapped[RegionLevel] = mapped_column(EnumText(RegionLevel, 16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), index=True)
    # Materialised path "/1/4/9/" so a subtree is one LIKE query.
    path: Mapped[str] = mapped_column(String(255), default="/", index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Region | None] = relationship(remote_side="Region.id")

    @property
    def audit_label(self) -> str:
        return self.name

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2


class Institution(TimestampMixin, db.Model):
    __tablename__ = "institution"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    short_name: Mapped[str] = mapped_column(String(40), default="")
    registration_code: Mapped[str] = mapped_column(String(40), unique=True)
    level: Mapped[InstitutionLevel] = mapped_column(EnumText(InstitutionLevel, 16))
    grade: Mapped[InstitutionGrade] = mapped_column(EnumText(InstitutionGrade, 16), default=InstitutionGrade.UNGRADED)
    category: Mapped[InstitutionCategory] = mapped_column(EnumText(InstitutionCategory, 24))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where a patient turns with a complaint: shown on the public pages that would otherwise be a dead end
    # (a replaced QR code, a closed touchpoint). Set by the institution's admin (organisation.views).
    complaint_phone: Mapped[str] = mapped_column(String(40), default="", server_default="")
    complaint_address: Mapped[str] = mapped_column(String(200), default="", server_default="")

    region: Mapped[Region] = relationship()

    @property
    def audit_label(self) -> str:
        return self.name

    @property
    def peer_class(self) -> tuple[str, str]:
        return (InstitutionLevel(self.level).value, InstitutionCategory(self.category).value)

    @property
    def display_name(self) -> str:
        return self.short_name or self.name

    @property
    def level_and_grade(self) -> str:
        """The level and its grade as one label (三级甲等, "Tertiary Grade A"); the level alone when ungraded."""
        level = InstitutionLevel(self.level).label
        if self.grade == InstitutionGrade.UNGRADED:
            return str(level)
        return gettext("%(level)s%(grade)s", level=level, grade=InstitutionGrade(self.grade).label)

    @property
    def complaint_phone_dial(self) -> str:
        """What a tel: link dials for the complaint phone: the digits of its first number (no extension)."""
        first = re.split(r"[转,，、/]", self.complaint_phone or "", maxsplit=1)[0]
        return re.sub(r"[^0-9+]", "", first)


class Department(InstitutionScoped, TimestampMixin, db.Model):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[DepartmentKind] = mapped_column(EnumText(DepartmentKind, 24))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Department | None] = relationship(remote_side="Department.id")

    @property
    def audit_label(self) -> str:
        return self.name


# Codes are unique within an institution regardless of case: "CWK" and "cwk" name one department.
Index("uq_department_institution_code_ci", Department.institution_id, func.lower(Department.code), unique=True)


class Touchpoint(InstitutionScoped, TimestampMixin, db.Model):
    __tablename__ = "touchpoint"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[TouchpointKind] = mapped_column(EnumText(TouchpointKind, 16))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    location: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    department: Mapped[Department] = relationship()

    @property
    def audit_label(self) -> str:
        return self.name


Index("uq_touchpoint_institution_code_ci", Touchpoint.institution_id, func.lower(Touchpoint.code), unique=True)


staff_department = Table(
    "staff_department",
    db.metadata,
    Column("staff_id", Integer, ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", Integer, ForeignKey("department.id", ondelete="CASCADE"), primary_key=True),
)


class StaffRole(db.Model):
    __tablename__ = "staff_role"
    __table_args__ = (UniqueConstraint("staff_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(EnumText(Role, 32))


class StaffUser(UserMixin, TimestampMixin, db.Model):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    # Institution staff carry their institution; regional admins their region;
    # platform admins neither.
    institution_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("institution.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Two-factor sign-in (organisation.totp): the shared secret, set when enrolment starts and confirmed by the
    # first right code (totp_enabled_at); the time step of the last code accepted, so that none is used twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    institution: Mapped[Institution | None] = relationship()
    region: Mapped[Region | None] = relationship()
    role_rows: Mapped[list[StaffRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    departments: Mapped[list[Department]] = relationship(secondary=staff_department, lazy="selectin")

    @property
    def audit_label(self) -> str:
        return self.username

    @property
    def roles(self) -> set[Role]:
        return {Role(r.role) for r in self.role_rows}

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return bool(self.active)

    def get_id(self) -> str:
        # The session itself is checked against its server-side row (organisation.sessions).
        return str(self.id)

    @property
    def department_ids(self) -> set[int]:
        return {d.id for d in self.departments}


class StaffSession(db.Model):
    """One signed-in browser of a staff member. Its cookie carries a random token, this row the token's hash;
    the session holds only while the row is open (organisation.sessions)."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The password was right and the two-factor code is still awaited: not signed in yet.
    second_factor_due: Mapped[bool] = mapped_column(Boolean, default=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    end_reason: Mapped[str] = mapped_column(String(20), default="")

    user: Mapped[StaffUser] = relationship()


# Notifications --------------------------------------------------------------------------------------

class Notification(db.Model):
    """One notice in one staff member's in-app list (core.notify.send records it, organisation.notifications
    keeps it). ``key`` names the item the notice is about, so a job that runs twice tells nobody twice."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("user_id", "key"),
        Index("ix_notification_user_created", "user_id", "created_at"),
        # The header's unread count on every staff page reads only this.
        Index("ix_notification_unread", "user_id", postgresql_where=text("read_at IS NULL"),
              sqlite_where=text("read_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(500), default="")
    # What subject and body were made of, to show them in the reader's language (organisation.notifications.shown):
    # {"subject": parts, "body": parts} as core.notify.Text.to_json writes them; NULL for a notice of plain words.
    texts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    link: Mapped[str | None] = mapped_column(String(300))        # a path on this site
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SmtpSecurity(LabelledEnum):
    STARTTLS = "starttls", _l("STARTTLS（端口 587）")
    SSL = "ssl", _l("SSL/TLS（端口 465）")
    NONE = "none", _l("不加密（仅限院内邮件服务器）")


class NotifierSettings(TimestampMixin, db.Model):
    """An institution's outbound channels for staff notices: group robots and an e-mail relay.

    The webhook addresses carry the robots' keys and are secrets like the passwords: never shown back
    in full, never logged, never in the audit trail.
    """

    __tablename__ = "notifier_settings"

    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), primary_key=True)
    wecom_webhook: Mapped[str] = mapped_column(String(500), default="")
    dingtalk_webhook: Mapped[str] = mapped_column(String(500), default="")
    dingtalk_secret: Mapped[str] = mapped_column(String(200), default="")
    smtp_host: Mapped[str] = mapped_column(String(200), default="")
    smtp_port: Mapped[int] = mapped_column(Integer, default=587)
    smtp_security: Mapped[SmtpSecurity] = mapped_column(EnumText(SmtpSecurity, 12), default=SmtpSecurity.STARTTLS)
    smtp_username: Mapped[str] = mapped_column(String(200), default="")
    smtp_password: Mapped[str] = mapped_column(String(200), default="")
    smtp_sender: Mapped[str] = mapped_column(String(254), default="")
    smtp_recipients: Mapped[str] = mapped_column(String(1000), default="")   # mailboxes, comma-separated


class DeliveryChannel(LabelledEnum):
    WECOM = "wecom", _l("企业微信群机器人")
    DINGTALK = "dingtalk", _l("钉钉群机器人")
    EMAIL = "email", _l("电子邮件")


class NotifierDelivery(db.Model):
    """A staff notice waiting for (or done with) one outbound channel of an institution: the outbox the
    delivery job and its sweep work through, with retries."""

    __tablename__ = "notifier_delivery"
    __table_args__ = (
        Index("ix_notifier_delivery_waiting", "next_attempt_at",
              postgresql_where=text("sent_at IS NULL AND gave_up_at IS NULL"),
              sqlite_where=text("sent_at IS NULL AND gave_up_at IS NULL")),
        Index("ix_notifier_delivery_recent", "institution_id", "channel", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    channel: Mapped[DeliveryChannel] = mapped_column(EnumText(DeliveryChannel, 12))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000), default="")
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    gave_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(String(200), default="")
