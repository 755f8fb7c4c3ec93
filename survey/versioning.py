"""Template lifecycle: shipped templates, copies, drafts, immutable published versions."""
from __future__ import annotations

import copy
from typing import Any

from flask_babel import gettext
from sqlalchemy import select

from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.services import ServiceError
from organisation.models import Institution
from survey import definitions
from survey.builtin import BUILTIN
from survey.models import SurveyTemplate, TemplateVersion, VersionStatus


class VersionError(ServiceError):
    """A version rule was broken (400); the message is for the user."""


def builtin_template(code: str) -> SurveyTemplate | None:
    return db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.institution_id.is_(None),
                                                          SurveyTemplate.code == code))


def install_builtin_templates(*, actor: Any = "system") -> list[SurveyTemplate]:
    """Create or update the shipped templates; a changed definition becomes a new published version."""
    installed = []
    for code, (audience, name, raw) in BUILTIN.items():
        definition = definitions.normalise(raw)
        definitions.validate(definition)
        template = builtin_template(code)
        if template is None:
            template = SurveyTemplate(code=code, name=name, audience=audience)
            db.session.add(template)
            db.session.flush()
            record(actor, "survey_template.install", template)
        current = template.published
        if current is None or current.content_hash != definitions.content_hash(definition):
            version = _add_version(template, definition)
            publish_version(version, actor=actor)
        installed.append(template)
    return installed


def _add_version(template: SurveyTemplate, definition: dict[str, Any]) -> TemplateVersion:
    number = max((v.number for v in template.versions), default=0) + 1
    version = TemplateVersion(template=template, number=number, status=VersionStatus.DRAFT,
                              definition=definition, content_hash=definitions.content_hash(definition),
                              created_at=utcnow())
    db.session.add(version)
    db.session.flush()
    return version


def copy_template(source: SurveyTemplate, institution: Institution, *, code: str, name: str,
                  actor: Any) -> SurveyTemplate:
    """Copy a template (shipped or the hospital's own) into a hospital's editable template, as a draft."""
    if db.session.scalar(select(SurveyTemplate.id).where(SurveyTemplate.institution_id == institution.id,
                                                         SurveyTemplate.code == code)) is not None:
        raise VersionError(gettext("本院已有编码为 %(code)s 的问卷。", code=code), "code")
    base = source.published or source.draft
    if base is None:
        raise VersionError(gettext("被复制的问卷没有可用版本。"))
    template = SurveyTemplate(institution_id=institution.id, code=code, name=name, audience=source.audience,
                              copied_from_id=source.id)
    db.session.add(template)
    db.session.flush()
    _add_version(template, copy.deepcopy(base.definition))
    record(actor, "survey_template.copy", template, {"from": source.id, "code": code})
    return template


def all_definitions(template: SurveyTemplate, *, lineage: bool = True) -> list[dict[str, Any]]:
    """Definitions of every earlier version, including the template it was copied from."""
    found = [v.definition for v in template.versions if v.status != VersionStatus.DRAFT]
    if lineage and template.copied_from_id:
        source = db.session.get(SurveyTemplate, template.copied_from_id)
        if source is not None:
            found += all_definitions(source)
    return found


def save_draft(template: SurveyTemplate, raw: dict[str, Any], *, actor: Any) -> TemplateVersion:
    """Replace the draft's definition (creating a draft from the published version if needed)."""
    if template.is_builtin:
        raise VersionError(gettext("内置问卷不能直接修改，请先复制为本院问卷。"))
    definition = definitions.normalise(raw)
    try:
        definitions.validate(definition)
        definitions.check_compatible(all_definitions(template), definition)
    except definitions.DefinitionError as exc:
        raise VersionError(str(exc)) from None
    draft = template.draft or _add_version(template, definition)
    before = draft.content_hash
    draft.definition = definition
    draft.content_hash = definitions.content_hash(definition)
    if before != draft.content_hash:
        record(actor, "survey_version.save_draft", draft, {"template_id": template.id, "number": draft.number})
    return draft


def start_draft(template: SurveyTemplate, *, actor: Any) -> TemplateVersion:
    """Open a new draft from the published version; the published one stays as it is."""
    if template.is_builtin:
        raise VersionError(gettext("内置问卷不能直接修改，请先复制为本院问卷。"))
    if template.draft is not None:
        return template.draft
    base = template.published
    if base is None:
        raise VersionError(gettext("没有可作为基础的版本。"))
    draft = _add_version(template, copy.deepcopy(base.definition))
    record(actor, "survey_version.start_draft", draft, {"template_id": template.id, "number": draft.number})
    return draft


def publish_version(version: TemplateVersion, *, actor: Any) -> TemplateVersion:
    """Publish a draft: it becomes immutable and new responses answer it."""
    if version.status != VersionStatus.DRAFT:
        raise VersionError(gettext("只有草稿可以发布。"))
    try:
        definitions.validate(version.definition)
        previous = [v.definition for v in version.template.versions
                    if v.id != version.id and v.status != VersionStatus.DRAFT]
        if version.template.copied_from_id:
            source = db.session.get(SurveyTemplate, version.template.copied_from_id)
            previous += all_definitions(source) if source else []
        definitions.check_compatible(previous, version.definition)
    except definitions.DefinitionError as exc:
        raise VersionError(str(exc)) from None
    version.content_hash = definitions.content_hash(version.definition)
    version.status = VersionStatus.PUBLISHED
    version.published_at = utcnow()
    for other in version.template.versions:
        if other.id != version.id and other.status == VersionStatus.PUBLISHED:
            other.status = VersionStatus.RETIRED
    record(actor, "survey_version.publish", version, {"template_id": version.template_id,
                                                      "number": version.number, "hash": version.content_hash})
    return version


_PUBLISHED_DEFINITIONS: dict[int, dict[str, Any]] = {}


def published_definition(version_id: int) -> dict[str, Any] | None:
    """A published version's definition, cached per process: published versions never change."""
    cached = _PUBLISHED_DEFINITIONS.get(version_id)
    if cached is None:
        version = db.session.get(TemplateVersion, version_id)
        if version is None or version.status == VersionStatus.DRAFT:
            return None
        cached = _PUBLISHED_DEFINITIONS[version_id] = version.definition
    return cached


def templates_for(institution: Institution, *, audience: str | None = None) -> list[SurveyTemplate]:
    """Shipped templates plus the institution's own, active ones first."""
    stmt = select(SurveyTemplate).where((SurveyTemplate.institution_id == institution.id)
                                        | SurveyTemplate.institution_id.is_(None))
    if audience:
        stmt = stmt.where(SurveyTemplate.audience == audience)
    return list(db.session.scalars(stmt.order_by(SurveyTemplate.institution_id.is_(None), SurveyTemplate.code)))
