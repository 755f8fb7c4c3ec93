"""A published questionnaire is read, not changed, by opening its editor: a draft is started by a POST
(issue 11, point 5: GET never changes data)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.extensions import db
from survey import versioning
from survey.models import SurveyTemplate, TemplateVersion, VersionStatus
from tests.survey.conftest import staff_login
from tests.survey.test_staff_views import base


@pytest.fixture
def published(builtin_templates, rmyy) -> SurveyTemplate:
    """rmyy's own window questionnaire, version 1 published, no draft."""
    template = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_PUB", name="本院窗口", actor="test")
    versioning.publish_version(template.draft, actor="test")
    db.session.flush()
    return template


def versions(template: SurveyTemplate) -> int:
    return db.session.scalar(select(func.count()).select_from(TemplateVersion)
                             .where(TemplateVersion.template_id == template.id))


def test_opening_the_editor_of_a_published_version_shows_it_read_only_and_saves_nothing(client, rmyy, published):
    staff_login(client, "rmyy-admin")
    audit = db.session.scalar(select(func.count()).select_from(AuditEntry))
    page = client.get(f"{base(rmyy)}/templates/{published.id}/edit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "只读" in html and "WIN_OVERALL" in html  # the published questions, to read
    assert 'class="form editor"' not in html  # nothing to fill in
    assert re.search(rf'<form method="post" action="/i/{rmyy.id}/survey/templates/{published.id}/draft"', html)
    db.session.expire_all()
    assert published.draft is None and versions(published) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == audit


def test_the_draft_button_starts_a_draft_audited_and_opens_the_editor(client, rmyy, published):
    admin = staff_login(client, "rmyy-admin")
    html = client.get(f"{base(rmyy)}/templates/{published.id}").get_data(as_text=True)
    assert f'action="{base(rmyy)}/templates/{published.id}/draft"' in html and "新建草稿" in html
    started = client.post(f"{base(rmyy)}/templates/{published.id}/draft")
    assert started.status_code == 302 and started.headers["Location"].endswith(f"/templates/{published.id}/edit")
    db.session.expire_all()
    assert published.draft.number == 2 and published.published.number == 1
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "survey_version.start_draft"))
    assert entry.actor_id == admin.id and entry.target_id == str(published.draft.id)
    assert 'class="form editor"' in client.get(f"{base(rmyy)}/templates/{published.id}/edit").get_data(as_text=True)
    # Pressed twice (a double click, a second tab): still one draft.
    assert client.post(f"{base(rmyy)}/templates/{published.id}/draft").status_code == 302
    db.session.expire_all()
    assert [v.status for v in published.versions].count(VersionStatus.DRAFT) == 1


def test_a_shipped_questionnaire_gets_no_draft_but_a_clear_message(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-admin")
    win = builtin_templates["WIN"]
    refused = client.post(f"{base(rmyy)}/templates/{win.id}/draft", follow_redirects=True)
    assert refused.status_code == 200 and "内置问卷不能直接修改" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert win.draft is None


def test_a_handler_cannot_start_a_draft(client, rmyy, published):
    staff_login(client, "rmyy-handler")
    assert client.post(f"{base(rmyy)}/templates/{published.id}/draft").status_code == 403
    db.session.expire_all()
    assert published.draft is None


def test_another_hospitals_admin_cannot_start_a_draft(client, rmyy, published):
    staff_login(client, "zyy-admin")
    assert client.post(f"{base(rmyy)}/templates/{published.id}/draft").status_code == 404
    db.session.expire_all()
    assert published.draft is None
