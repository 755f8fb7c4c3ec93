"""Survey templates and their immutable published versions."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import EnumText, TimestampMixin, UTCDateTime
from core.enums import LabelledEnum
from core.extensions import db


class Audience(LabelledEnum):
    WINDOW = "window", _l("窗口即时评价")
    OUTPATIENT = "outpatient", _l("门诊患者")
    INPATIENT = "inpatient", _l("住院患者")
    STAFF = "staff", _l("医务人员")


class VersionStatus(LabelledEnum):
    DRAFT = "draft", _l("草稿")
    PUBLISHED = "published", _l("已发布")
    RETIRED = "retired", _l("已停用")


class SurveyTemplate(TimestampMixin, db.Model):
    """A questionnaire. Shipped templates have no institution; hospitals copy them."""

    __tablename__ = "survey_template"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("institution.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    audience: Mapped[Audience] = mapped_column(EnumText(Audience, 16))
    copied_from_id: Mapped[int | None] = mapped_column(ForeignKey("survey_template.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    versions: Mapped[list[TemplateVersion]] = relationship(
        back_populates="template", order_by="TemplateVersion.number", cascade="all, delete-orphan")

    @property
    def audit_label(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.institution_id is None

    @property
    def published(self) -> TemplateVersion | None:
        """The version new responses answer: the newest published one."""
        live = [v for v in self.versions if v.status == VersionStatus.PUBLISHED]
        return live[-1] if live else None

    @property
    def draft(self) -> TemplateVersion | None:
        drafts = [v for v in self.versions if v.status == VersionStatus.DRAFT]
        return drafts[-1] if drafts else None


class TemplateVersion(db.Model):
    """One version of a template. Once published its definition never changes."""

    __tablename__ = "survey_template_version"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_template.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[VersionStatus] = mapped_column(EnumText(VersionStatus, 16), default=VersionStatus.DRAFT)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    template: Mapped[SurveyTemplate] = relationship(back_populates="versions")

    @property
    def audit_label(self) -> str:
        return f"{self.template.name} v{self.number}"

    @property
    def institution_id(self) -> int | None:
        return self.template.institution_id


class PublishedVersionChanged(RuntimeError):
    """Raised when code tries to alter a published version's definition."""


@event.listens_for(TemplateVersion, "before_update")
def _guard_published(mapper, connection, target: TemplateVersion) -> None:
    # Defence in depth: services never edit a published definition, and the
    # database row must not change even if a bug tries to.
    # Any change counts (a reassignment, an in-place edit marked with
    # flag_modified, or a write to an expired attribute, which has no old
    # value), and the status that matters is the stored one: a draft may be
    # edited and published in one flush, a published row may not be edited
    # by flipping it back to draft.
    state = db.inspect(target)
    if not state.attrs.definition.history.has_changes():
        return
    status = state.attrs.status.history
    stored_status = status.deleted[0] if status.deleted else target.status
    if stored_status != VersionStatus.DRAFT:
        raise PublishedVersionChanged(f"version {target.id} is {stored_status}; its definition is immutable")
