"""Template lifecycle: shipped templates, copies, drafts and immutable published versions."""
from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm.attributes import flag_modified

from core.audit import AuditEntry
from core.extensions import db
from survey import builtin, definitions, qr, versioning
from survey.definitions import FREQ4, YESNO
from survey.models import SurveyResponse, SurveyTemplate, TemplateVersion, VersionStatus
from survey.models.templates import PublishedVersionChanged

from .conftest import stored, submission_id_of, submit, survey_path


def version_count() -> int:
    return db.session.scalar(select(func.count()).select_from(TemplateVersion))


def reload(version: TemplateVersion) -> TemplateVersion:
    db.session.expire(version)
    db.session.refresh(version)
    return version


def edited(definition, **changes_by_code):
    """A copy of ``definition`` with item fields changed, by item code."""
    new = copy.deepcopy(definition)
    for entry in new["items"]:
        entry.update(changes_by_code.get(entry["code"], {}))
    return new


@pytest.fixture
def own_window(builtin_templates, rmyy) -> SurveyTemplate:
    """rmyy's copy of the shipped window template, with its first version published."""
    template = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_RMYY", name="本院窗口评价",
                                        actor="test")
    versioning.publish_version(template.draft, actor="test")
    db.session.flush()
    return template


# Shipped templates -------------------------------------------------------------

def test_install_publishes_the_four_shipped_templates(builtin_templates):
    assert set(builtin_templates) == {"WIN", "OPD", "IPD", "STF"}
    for code, template in builtin_templates.items():
        assert template.is_builtin
        version = template.published
        assert version is not None and version.number == 1 and version.published_at is not None
        expected = definitions.normalise(builtin.BUILTIN[code][2])
        assert version.definition == expected
        assert version.content_hash == definitions.content_hash(expected)


def test_install_is_idempotent_when_nothing_changed(builtin_templates):
    before = version_count()
    hashes = {code: t.published.content_hash for code, t in builtin_templates.items()}
    again = versioning.install_builtin_templates(actor="test")
    db.session.flush()
    assert version_count() == before
    assert {t.code: t.published.content_hash for t in again} == hashes
    assert [t.id for t in again] == [builtin_templates[c].id for c in ("WIN", "OPD", "IPD", "STF")]


def test_a_changed_shipped_template_becomes_a_new_version_and_retires_the_old(builtin_templates, monkeypatch):
    old = builtin_templates["WIN"].published
    audience, name, raw = builtin.BUILTIN["WIN"]
    reworded = copy.deepcopy(raw)
    reworded["items"][0]["text"] = "您对今天的窗口服务满意吗？"
    monkeypatch.setitem(builtin.BUILTIN, "WIN", (audience, name, reworded))  # the next release's wording
    versioning.install_builtin_templates(actor="test")
    db.session.flush()
    template = builtin_templates["WIN"]
    assert template.published.number == 2
    assert template.published.definition["items"][0]["text"] == "您对今天的窗口服务满意吗？"
    assert reload(old).status == VersionStatus.RETIRED
    assert old.definition["items"][0]["text"] == "您对本次窗口服务满意吗？"


def test_builtin_templates_cannot_be_edited(builtin_templates):
    template = builtin_templates["OPD"]
    published = template.published
    with pytest.raises(versioning.VersionError, match="内置问卷不能直接修改"):
        versioning.save_draft(template, edited(published.definition), actor="test")
    with pytest.raises(versioning.VersionError, match="内置问卷不能直接修改"):
        versioning.start_draft(template, actor="test")
    assert template.draft is None


# Copies and drafts -----------------------------------------------------------------

def test_copy_makes_an_editable_draft_of_the_source(builtin_templates, rmyy):
    source = builtin_templates["IPD"]
    template = versioning.copy_template(source, rmyy, code="IPD_RMYY", name="本院住院问卷", actor="test")
    assert template.institution_id == rmyy.id and template.copied_from_id == source.id
    assert template.published is None
    assert template.draft.definition == source.published.definition
    assert template.draft.status == VersionStatus.DRAFT
    with pytest.raises(versioning.VersionError, match="IPD_RMYY"):
        versioning.copy_template(source, rmyy, code="IPD_RMYY", name="重复", actor="test")


def test_editing_a_published_version_opens_a_new_draft(own_window):
    published = own_window.published
    hash_before = published.content_hash
    definition_before = copy.deepcopy(published.definition)
    draft = versioning.save_draft(own_window, edited(published.definition, WIN_OVERALL={"text": "满意吗？"}),
                                  actor="test")
    db.session.flush()
    assert draft.id != published.id and draft.number == 2 and draft.status == VersionStatus.DRAFT
    assert reload(published).definition == definition_before
    assert published.content_hash == hash_before
    assert published.status == VersionStatus.PUBLISHED


def test_start_draft_reuses_the_open_draft(own_window):
    first = versioning.start_draft(own_window, actor="test")
    assert versioning.start_draft(own_window, actor="test") is first
    assert first.definition == own_window.published.definition


def test_a_published_version_cannot_be_published_again(own_window):
    with pytest.raises(versioning.VersionError):
        versioning.publish_version(own_window.published, actor="test")


def test_publishing_keeps_the_hash_and_retires_the_previous_version(own_window):
    v1 = own_window.published
    v1_hash = v1.content_hash
    draft = versioning.save_draft(own_window, edited(v1.definition, WIN_COMMENT={"text": "还有什么建议？"}),
                                  actor="test")
    draft_hash = draft.content_hash
    versioning.publish_version(draft, actor="test")
    db.session.flush()
    assert own_window.published is draft and draft.number == 2
    assert reload(draft).content_hash == draft_hash == definitions.content_hash(draft.definition)
    assert reload(v1).status == VersionStatus.RETIRED
    assert v1.content_hash == v1_hash == definitions.content_hash(v1.definition)
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "survey_version.publish", AuditEntry.target_id == str(draft.id))) == 1


def test_a_draft_may_be_saved_and_published_in_one_flush(own_window):
    draft = versioning.save_draft(own_window, edited(own_window.published.definition,
                                                     WIN_OVERALL={"text": "今天满意吗？"}), actor="test")
    draft.definition = edited(draft.definition, WIN_COMMENT={"text": "请留言"})  # a second edit, not flushed
    versioning.publish_version(draft, actor="test")
    db.session.flush()
    assert reload(draft).definition["items"][2]["text"] == "请留言"


# Compatibility across versions ---------------------------------------------------------

def test_changing_an_items_type_in_a_new_version_fails_naming_the_code(own_window):
    published = own_window.published
    with pytest.raises(versioning.VersionError, match="WIN_OVERALL"):
        versioning.save_draft(own_window, edited(published.definition, WIN_OVERALL={"type": FREQ4}),
                              actor="test")
    assert own_window.draft is None


def test_changing_a_scored_scale_fails_naming_the_code(builtin_templates, rmyy):
    template = versioning.copy_template(builtin_templates["OPD"], rmyy, code="OPD_RMYY", name="本院门诊",
                                        actor="test")
    base = template.draft.definition
    rescored = [dict(o) for o in definitions.item_by_code(base, "OPD_REG_EASE")["options"]]
    rescored[1]["score"] = 25.0
    with pytest.raises(versioning.VersionError, match="OPD_REG_EASE"):
        versioning.save_draft(template, edited(base, OPD_REG_EASE={"options": rescored}), actor="test")


def test_a_copy_may_not_change_a_scale_of_the_builtin_it_came_from(builtin_templates, rmyy):
    """The copy has no published version yet: the check runs against the shipped template's versions."""
    template = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_COPY", name="窗口", actor="test")
    draft = template.draft
    with pytest.raises(versioning.VersionError, match="WIN_CONTACT"):
        versioning.save_draft(template, edited(draft.definition, WIN_CONTACT={
            "type": "single", "options": [{"value": "yes", "label": "是", "score": 100},
                                          {"value": "no", "label": "否", "score": 0}]}), actor="test")


def test_publish_rechecks_compatibility(builtin_templates, rmyy):
    """A draft changed outside save_draft is still refused at publish time, naming the code."""
    template = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_PUB", name="窗口", actor="test")
    draft = template.draft
    draft.definition = definitions.normalise(edited(draft.definition, WIN_OVERALL={"type": YESNO, "options": []}))
    with pytest.raises(versioning.VersionError, match="WIN_OVERALL"):
        versioning.publish_version(draft, actor="test")
    assert draft.status == VersionStatus.DRAFT


def test_label_changes_and_new_items_are_allowed(own_window):
    base = own_window.published.definition
    new = edited(base, WIN_OVERALL={"text": "今天的服务您满意吗？"})
    new["items"].append({"code": "WIN_AGAIN", "type": YESNO, "text": "您还会来本窗口办理吗？"})
    draft = versioning.save_draft(own_window, new, actor="test")
    versioning.publish_version(draft, actor="test")
    assert [i["code"] for i in own_window.published.definition["items"]][-1] == "WIN_AGAIN"


# The database guard ------------------------------------------------------------------

def _retitled(version):
    definition = copy.deepcopy(version.definition)
    definition["title"] = "被改动的标题"
    return definition


def test_guard_refuses_reassigning_a_published_definition(own_window):
    own_window.published.definition = _retitled(own_window.published)
    with pytest.raises(PublishedVersionChanged):
        db.session.flush()


def test_guard_refuses_an_in_place_edit_marked_modified(own_window):
    published = own_window.published
    published.definition["title"] = "被改动的标题"
    flag_modified(published, "definition")
    with pytest.raises(PublishedVersionChanged):
        db.session.flush()


def test_guard_refuses_writing_an_expired_published_definition(own_window):
    published = own_window.published
    new = _retitled(published)
    db.session.flush()
    db.session.expire(published, ["definition"])
    published.definition = new
    with pytest.raises(PublishedVersionChanged):
        db.session.flush()


def test_guard_refuses_flipping_a_published_version_back_to_draft_to_edit_it(own_window):
    published = own_window.published
    new = _retitled(published)
    published.status = VersionStatus.DRAFT
    published.definition = new
    with pytest.raises(PublishedVersionChanged):
        db.session.flush()


def test_guard_also_protects_retired_versions(own_window):
    v1 = own_window.published
    draft = versioning.start_draft(own_window, actor="test")
    versioning.publish_version(draft, actor="test")
    db.session.flush()
    assert v1.status == VersionStatus.RETIRED
    v1.definition = _retitled(v1)
    with pytest.raises(PublishedVersionChanged):
        db.session.flush()


# Responses record their version -------------------------------------------------------

def test_every_response_records_the_version_it_answered(own_window, window_code, client, ctx):
    qr.set_template(window_code, own_window, actor="test")
    v1 = own_window.published
    first = submit(client, window_code, WIN_OVERALL="5")
    assert first.status_code == 303
    draft = versioning.save_draft(own_window, edited(v1.definition, WIN_OVERALL={"text": "今天满意吗？"}),
                                  actor="test")
    versioning.publish_version(draft, actor="test")
    second = submit(client, window_code, WIN_OVERALL="4")
    assert second.status_code == 303
    assert stored(submission_id_of(first)).template_version_id == v1.id
    assert stored(submission_id_of(second)).template_version_id == draft.id
    # Every stored response names a version.
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse).where(
        SurveyResponse.template_version_id.is_(None))) == 0
    assert "今天满意吗？" in client.get(survey_path(window_code)).get_data(as_text=True)
