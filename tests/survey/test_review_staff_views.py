"""Review: staff survey pages under odd query strings, alert permissions, editor numbers, CSV formulas."""
from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from core.audit import record
from core.extensions import db
from survey.models import AlertStatus, RecoveryAlert, SurveyTemplate

from .conftest import staff_login
from .test_staff_survey import department, fill, make_batch, stf  # noqa: F401 - fixtures
from .test_staff_views import PHONE, base, pharmacy_code, seeded, text  # noqa: F401 - fixtures

# Odd query strings ----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/responses", "/alerts"])
def test_an_absurd_page_number_is_an_empty_page_not_a_500(client, rmyy, seeded, path):
    staff_login(client, "rmyy-admin")

    response = client.get(f"{base(rmyy)}{path}?page=99999999999999999999")

    assert response.status_code == 200


@pytest.mark.parametrize("query", ["fmt=x", "institution_id=2", "_external=0&_scheme=x"])
def test_unknown_query_arguments_on_the_responses_page_are_ignored_not_a_500(client, rmyy, seeded, query):
    staff_login(client, "rmyy-admin")

    response = client.get(f"{base(rmyy)}/responses?{query}")

    assert response.status_code == 200


def test_export_links_carry_the_filters_and_nothing_else(client, rmyy, seeded):
    staff_login(client, "rmyy-admin")

    page = text(client.get(f"{base(rmyy)}/responses?flagged=all&_anchor=%0Aalert(1)&_external=1"))

    links = re.findall(r'href="([^"]*/responses/export\.(?:csv|xlsx)[^"]*)"', page)
    assert len(links) == 2
    for link in links:
        assert "flagged=all" in link
        assert "#" not in link and "alert" not in link and link.startswith("/")


def test_the_pager_ignores_url_building_arguments_in_the_query_string(client, rmyy):
    for n in range(55):  # more than one page of audit entries
        record("test", "test.pager", ("thing", n))
    admin = staff_login(client, "rmyy-admin")
    for n in range(55):
        record(admin, "test.pager", ("thing", n))

    response = client.get(f"/i/{rmyy.id}/audit?action=test.pager&_external=0&_scheme=javascript&_anchor=x")

    assert response.status_code == 200
    pager_links = re.findall(r'<nav class="pager".*?</nav>', text(response), re.S)
    assert pager_links and "javascript" not in pager_links[0] and "#x" not in pager_links[0]
    assert "page=2" in pager_links[0]


# Service-recovery alerts: who may act on them --------------------------------------

def _alert(seeded_ids, name="pharmacy") -> RecoveryAlert:
    return db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == seeded_ids[name]))


@pytest.mark.parametrize("username", ["rmyy-leader", "region"])
def test_read_only_roles_cannot_acknowledge_or_close_alerts(client, rmyy, seeded, username):
    alert = _alert(seeded)
    staff_login(client, username)
    url = f"{base(rmyy)}/alerts/{alert.id}"

    page = client.get(url)
    acknowledged = client.post(f"{url}/acknowledge")
    closed = client.post(url, data={"note": "领导已阅"})

    assert page.status_code == 200
    assert (acknowledged.status_code, closed.status_code) == (403, 403)
    db.session.refresh(alert)
    assert alert.status == AlertStatus.OPEN


@pytest.mark.parametrize("username", ["rmyy-leader", "region"])
def test_read_only_roles_do_not_see_the_patients_phone_number(client, rmyy, seeded, username):
    alert = _alert(seeded)
    staff_login(client, username)

    page = text(client.get(f"{base(rmyy)}/alerts/{alert.id}"))

    assert PHONE not in page
    assert "关闭提醒" not in page


def test_the_complaint_officer_still_sees_the_phone_and_closes_the_alert(client, rmyy, seeded):
    alert = _alert(seeded)
    staff_login(client, "rmyy-officer")
    url = f"{base(rmyy)}/alerts/{alert.id}"

    assert PHONE in text(client.get(url))
    assert client.post(url, data={"note": "已回电。"}).status_code == 302
    db.session.refresh(alert)
    assert alert.status == AlertStatus.CLOSED


# Template editor numbers -------------------------------------------------------------

@pytest.fixture
def own_template(client, rmyy, builtin_templates) -> SurveyTemplate:
    staff_login(client, "rmyy-admin")
    copied = client.post(f"{base(rmyy)}/templates/{builtin_templates['WIN'].id}/copy",
                         data={"code": "WIN_REVIEW", "name": "评审问卷"})
    assert copied.status_code == 302
    return db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.institution_id == rmyy.id,
                                                          SurveyTemplate.code == "WIN_REVIEW"))


ONE_ITEM = {"title": "测试", "items-0-code": "Q1", "items-0-type": "scale5", "items-0-text": "满意吗？"}


@pytest.mark.parametrize("fields", [
    {"dimensions": "D|维度|nan", "items-0-dimension": "D"},
    {"dimensions": "D|维度|1e999", "items-0-dimension": "D"},
    {"items-0-type": "single", "items-0-options": "a|好|nan\nb|差|0"},
    {"items-0-type": "single", "items-0-options": "a|好|inf\nb|差|0"},
    {"items-1-code": "Q2", "items-1-type": "text", "items-1-text": "原因", "items-1-show_if": "Q1<=abc"},
    {"items-1-code": "Q2", "items-1-type": "text", "items-1-text": "原因", "items-1-show_if": "Q1<=nan"},
])
def test_editor_numbers_that_are_not_finite_are_a_400_with_a_message(client, rmyy, own_template, fields):
    response = client.post(f"{base(rmyy)}/templates/{own_template.id}/edit", data={**ONE_ITEM, **fields})

    assert response.status_code == 400
    assert 'class="flash flash-error"' in text(response)


# Formula injection in the staff survey CSVs ------------------------------------------

def _cells(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8").lstrip("\ufeff"))))


def test_staff_survey_csvs_neutralise_formulas_in_department_names(client, rmyy, make_batch):
    batch = make_batch("XNK", 6)
    batch.department.name = "=HYPERLINK(\"http://evil.example\",\"点我\")"
    fill(batch, ["5", "4", "4", "2", "4"])
    db.session.flush()
    staff_login(client, "rmyy-admin")

    links = _cells(client.get(f"{base(rmyy)}/staff-survey/batches/{batch.id}/links.csv"))
    results = _cells(client.get(f"{base(rmyy)}/staff-survey/results.csv"))

    cells = [c for row in links[1:] + results[1:] for c in row if "HYPERLINK" in c]
    assert cells and all(c.startswith("'") for c in cells)
