"""Staff satisfaction survey: one-time anonymous tokens, slips, and results withheld for small groups."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from core import signing
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from organisation.models import Department
from survey import staff_survey
from survey.models import Channel, RecoveryAlert, StaffSurveyBatch, StaffSurveyToken, SurveyResponse
from survey.submission import settings_for
from tests.survey.conftest import aged_form_token, hidden_fields, pdf_pages, staff_login

GOOD = {"STF_OVERALL": "5", "STF_WORKLOAD": "4", "STF_SCHEDULE": "4", "STF_PAY": "3", "STF_PAY_FAIR": "3",
        "STF_MANAGEMENT": "4", "STF_COLLEAGUES": "5", "STF_SAFETY": "3", "STF_ENV_EQUIP": "4", "STF_DEVELOP": "3"}


def department(institution, code: str) -> Department:
    return db.session.scalar(select(Department).where(Department.institution_id == institution.id,
                                                      Department.code == code))


def base(institution) -> str:
    return f"/i/{institution.id}/survey/staff-survey"


def token_path(token: StaffSurveyToken) -> str:
    return f"/s/{staff_survey.token_path(token)}"


@pytest.fixture
def stf(builtin_templates):
    return builtin_templates["STF"]


@pytest.fixture
def make_batch(rmyy, stf):
    def make(dept_code: str = "XNK", size: int = 6, institution=None):
        institution = institution or rmyy
        return staff_survey.create_batch(institution, department(institution, dept_code), stf, size, actor="test")

    return make


def answer(token: StaffSurveyToken, **overrides) -> SurveyResponse:
    """A clean staff answer stored through the service, as the /s/ page does."""
    import uuid

    data = MultiDict([(f"q_{k}", v) for k, v in {**GOOD, **overrides}.items()])
    response, created = staff_survey.submit_with_token(token, uuid.uuid4().hex, data.get, data.getlist,
                                                       fill_seconds=40.0)
    assert created
    return response


def post_answers(client, path: str, *, submission_id: str | None = None, **overrides):
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    fields = hidden_fields(page.get_data(as_text=True))
    fields["form_token"] = aged_form_token(fields["form_token"], 30)
    if submission_id:
        fields["submission_id"] = submission_id
    data = MultiDict(list(fields.items()) + [(f"q_{k}", v) for k, v in {**GOOD, **overrides}.items()])
    return client.post(path, data=data), fields["submission_id"]


def staff_responses(institution) -> list[SurveyResponse]:
    db.session.expire_all()
    return list(db.session.scalars(select(SurveyResponse).where(
        SurveyResponse.institution_id == institution.id, SurveyResponse.channel == Channel.STAFF_TOKEN.value)))


# Batches ---------------------------------------------------------------

def test_create_batch_issues_one_time_tokens_that_expire_after_link_valid_days(rmyy, make_batch):
    settings_for(rmyy.id).link_valid_days = 10
    batch = make_batch("XNK", 4)
    assert len(batch.tokens) == 4 and all(t.used_at is None for t in batch.tokens)
    assert abs((batch.expires_at - utcnow()) - timedelta(days=10)) < timedelta(minutes=1)
    assert batch.department.code == "XNK"
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "staff_survey.create_batch",
                                                       AuditEntry.target_id == str(batch.id)))
    assert entry.data["size"] == 4


@pytest.mark.parametrize("size", [0, -1, 1001])
def test_create_batch_refuses_absurd_sizes(rmyy, make_batch, size):
    with pytest.raises(staff_survey.StaffSurveyError):
        make_batch("XNK", size)


def test_a_batch_label_is_typed_text_of_at_most_80_characters(rmyy, stf):
    xnk = department(rmyy, "XNK")
    batch = staff_survey.create_batch(rmyy, xnk, stf, 1, actor="test", label="  2026 年度调查 ")
    assert batch.label == "2026 年度调查"
    with pytest.raises(staff_survey.StaffSurveyError, match="不能超过 80 字") as refused:
        staff_survey.create_batch(rmyy, xnk, stf, 1, actor="test", label="长" * 81)
    assert refused.value.field == "label"
    unnamed = staff_survey.create_batch(rmyy, xnk, stf, 1, actor="test", label="  ")
    assert unnamed.label.startswith(xnk.name)


def test_create_batch_refuses_a_patient_template(rmyy, builtin_templates):
    with pytest.raises(staff_survey.StaffSurveyError):
        staff_survey.create_batch(rmyy, department(rmyy, "XNK"), builtin_templates["WIN"], 3, actor="test")


def test_batch_form_creates_a_batch_and_shows_downloads(client, rmyy, stf):
    staff_login(client, "rmyy-admin")
    xnk = department(rmyy, "XNK")
    response = client.post(f"{base(rmyy)}/batches/new",
                           data={"department_id": xnk.id, "template_id": stf.id, "size": "12", "label": "2026 年度"})
    assert response.status_code == 302
    batch = db.session.scalar(select(StaffSurveyBatch).where(StaffSurveyBatch.institution_id == rmyy.id))
    assert batch.size == 12 and batch.label == "2026 年度" and len(batch.tokens) == 12
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "slips.pdf" in page and "links.csv" in page


@pytest.mark.parametrize("size", ["0", "abc", ""])
def test_batch_form_rejects_bad_size_with_a_message(client, rmyy, stf, size):
    staff_login(client, "rmyy-admin")
    response = client.post(f"{base(rmyy)}/batches/new",
                           data={"department_id": department(rmyy, "XNK").id, "template_id": stf.id, "size": size})
    assert response.status_code == 400
    assert "份数" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(StaffSurveyBatch)) == 0


def test_slips_pdf_has_eight_slips_a_page_and_csv_lists_every_link(client, rmyy, make_batch):
    batch = make_batch("XNK", 10)
    staff_login(client, "rmyy-admin")
    pdf = client.get(f"{base(rmyy)}/batches/{batch.id}/slips.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf_pages(pdf.data) == 2
    response = client.get(f"{base(rmyy)}/batches/{batch.id}/links.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]
    assert len(rows) == 10
    paths = [re.search(r"/s/[0-9]+-[a-z0-9]+$", row[2]).group(0) for row in rows]
    assert len(set(paths)) == 10
    assert client.get(paths[0]).status_code == 200


# The /s/ page ----------------------------------------------------------

def test_the_links_csv_is_written_by_the_tabular_writer(client, rmyy, make_batch):
    batch = make_batch("XNK", 2)
    batch.department.name = "=HYPERLINK(\"http://evil\")"
    db.session.flush()
    staff_login(client, "rmyy-admin")
    response = client.get(f"{base(rmyy)}/batches/{batch.id}/links.csv")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == f'attachment; filename="staff-survey-{batch.id}.csv"'
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    header, *rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    assert header == ["序号", "科室", "问卷链接", "有效期至"]
    assert [row[0] for row in rows] == ["1", "2"]
    assert {row[1] for row in rows} == {"'=HYPERLINK(\"http://evil\")"}  # shown as text, never run as a formula
    assert all(re.fullmatch(r"https?://[^/]+/s/\S+", row[2]) for row in rows)
    assert {row[3] for row in rows} == {staff_survey.day_text(batch.expires_at)}


def test_slip_links_use_the_public_base_url_when_one_is_set(app, monkeypatch, make_batch):
    batch = make_batch("XNK", 1)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://pj.example.cn")
    with app.test_request_context("/"):
        assert staff_survey.batch_urls(batch) == [f"https://pj.example.cn{token_path(batch.tokens[0])}"]


def test_token_opens_the_staff_questionnaire(client, make_batch, stf):
    batch = make_batch("XNK", 2)
    page = client.get(token_path(batch.tokens[0]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert stf.published.definition["title"] in html and "心血管内科" in html
    assert "q_STF_OVERALL" in html


def test_token_is_single_use(client, new_client, rmyy, make_batch):
    batch = make_batch("XNK", 2)
    token = batch.tokens[0]
    path = token_path(token)
    response, submission_id = post_answers(client, path)
    assert response.status_code == 303 and response.headers["Location"].endswith("/s/done")
    assert "谢谢" in client.get(response.headers["Location"]).get_data(as_text=True)
    stored = staff_responses(rmyy)
    assert len(stored) == 1
    assert stored[0].department_id == batch.department_id and stored[0].version.template.code == "STF"
    db.session.refresh(token)
    assert token.used_at is not None

    again = new_client().get(path)
    assert again.status_code == 410 and "此链接已使用" in again.get_data(as_text=True)
    # Someone who kept the page open posts a fresh submission: refused, nothing stored.
    other = new_client()
    page_fields = hidden_fields(client.get(token_path(batch.tokens[1])).get_data(as_text=True))
    refused = other.post(path, data={**page_fields, "submission_id": "f" * 32, "q_STF_OVERALL": "1"})
    assert refused.status_code == 410
    # The first phone retrying the same submission (bad network) is told it was received.
    retry = client.post(path, data={"submission_id": submission_id, "q_STF_OVERALL": "5"})
    assert retry.status_code == 303 and retry.headers["Location"].endswith("/s/done")
    assert len(staff_responses(rmyy)) == 1


def test_answers_do_not_point_back_at_the_token(client, rmyy, make_batch):
    batch = make_batch("XNK", 1)
    token = batch.tokens[0]
    response, _sid = post_answers(client, token_path(token))
    assert response.status_code == 303
    stored = staff_responses(rmyy)[0]
    assert stored.touchpoint_id is None and stored.code_id is None
    assert stored.device_hash == "" and stored.ip_hash == ""
    columns = {c.name for c in SurveyResponse.__table__.columns}
    assert not any("token" in c for c in columns)
    db.session.refresh(token)
    assert (token.used_at.hour, token.used_at.minute, token.used_at.second) == (0, 0, 0)
    # Using a token leaves no audit entry whose time would re-link it to the answer.
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.target_type == "survey_staff_token")) == 0


def test_a_low_staff_rating_raises_no_service_recovery_alert(client, rmyy, make_batch):
    batch = make_batch("XNK", 1)
    response, _sid = post_answers(client, token_path(batch.tokens[0]), STF_OVERALL="1")
    assert response.status_code == 303
    stored = staff_responses(rmyy)[0]
    assert db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == stored.id)) is None


def test_missing_required_answer_is_a_400_and_the_token_stays_unused(client, rmyy, make_batch):
    batch = make_batch("XNK", 1)
    response, _sid = post_answers(client, token_path(batch.tokens[0]), STF_OVERALL="")
    assert response.status_code == 400
    assert "请选择一项" in response.get_data(as_text=True)
    db.session.refresh(batch.tokens[0])
    assert batch.tokens[0].used_at is None and staff_responses(rmyy) == []


def test_expired_token_shows_a_friendly_page(client, make_batch):
    batch = make_batch("XNK", 1)
    batch.expires_at = utcnow() - timedelta(minutes=1)
    db.session.flush()
    page = client.get(token_path(batch.tokens[0]))
    assert page.status_code == 410 and "此链接已过期" in page.get_data(as_text=True)


@pytest.mark.parametrize("token", ["garbage", "999999-abcdefghijkl", "", "1-", "-x"])
def test_invalid_tokens_show_a_friendly_page(client, builtin_templates, token):
    page = client.get(f"/s/{token}" if token else "/s/x")
    assert page.status_code == 404
    assert "链接无法识别" in page.get_data(as_text=True)


def test_a_forged_signature_is_refused(client, make_batch):
    token = make_batch("XNK", 1).tokens[0]
    forged = f"{token.id}-{'a' * 12}"
    assert forged != staff_survey.token_path(token)
    page = client.get(f"/s/{forged}")
    assert page.status_code == 404
    # A touchpoint-QR signature for the same id is not a staff token either.
    other_purpose = signing.signed_id("touchpoint-qr", token.id)
    assert client.get(f"/s/{other_purpose}").status_code == 404


# Results ---------------------------------------------------------------

def results_row(html: str, key) -> str:
    match = re.search(rf'<tr data-group="{key}">(.*?)</tr>', html, re.S)
    assert match, key
    return match.group(1)


def csv_rows(response) -> dict[str, list[str]]:
    text = response.data.decode("utf-8").lstrip("\ufeff")
    return {row[0]: row for row in list(csv.reader(io.StringIO(text)))[1:]}


def fill(batch, overall_values: list[str]) -> None:
    for token, overall in zip(batch.tokens, overall_values, strict=False):  # a batch has more tokens than answers
        answer(token, STF_OVERALL=overall, STF_DEVELOP="1")


def test_a_staff_answer_counts_in_the_year_of_its_beijing_day(rmyy, make_batch, stf):
    batch = make_batch("XNK", 6)
    fill(batch, ["5"] * 5)
    for response in staff_responses(rmyy):
        response.submitted_at = datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Beijing
    db.session.flush()
    assert staff_survey.years_with_responses(rmyy) == [2026]
    assert staff_survey.staff_results(rmyy, stf, 2026).total.n == 5
    assert staff_survey.staff_results(rmyy, stf, 2025).total is None


def test_four_answers_are_withheld_on_page_and_csv(client, rmyy, make_batch):
    batch = make_batch("XNK", 6)
    fill(batch, ["5", "4", "4", "2"])  # overall mean 68.8 (100, 75, 75, 25)
    staff_login(client, "rmyy-admin")
    page = client.get(base(rmyy))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    row = results_row(html, batch.department_id)
    assert "样本不足 5 份，不予显示" in row
    assert not re.search(r"\d", re.sub(r"<[^>]+>", "", row).replace("5 份", ""))
    assert "68.8" not in html
    total = results_row(html, "all")
    assert "样本不足" in total and "68.8" not in total
    export = client.get(f"{base(rmyy)}/results.csv")
    assert export.status_code == 200
    rows = csv_rows(export)
    assert rows["心血管内科"][1:] == ["样本不足 5 份，不予显示", "", "", "", "", "", ""]
    assert "68.8" not in export.data.decode("utf-8")
    assert rows["全院"][1] == "样本不足 5 份，不予显示"


def test_five_answers_are_shown_on_page_and_csv(client, rmyy, make_batch):
    batch = make_batch("XNK", 6)
    fill(batch, ["5", "4", "4", "2", "4"])  # overall mean 70.0; development 0.0
    staff_login(client, "rmyy-admin")
    html = client.get(base(rmyy)).get_data(as_text=True)
    row = results_row(html, batch.department_id)
    assert "样本不足" not in row
    assert ">5<" in row and "70.0" in row and "0.0" in row
    rows = csv_rows(client.get(f"{base(rmyy)}/results.csv"))
    assert rows["心血管内科"][1:3] == ["5", "70.0"]
    assert rows["心血管内科"][-1] == "0.0"  # the development dimension, last column
    assert rows["全院"][1:3] == ["5", "70.0"]


def test_total_is_withheld_when_it_would_reveal_a_small_group(client, rmyy, make_batch):
    shown = make_batch("XNK", 5)
    small = make_batch("XHNK", 5)
    fill(shown, ["5", "5", "5", "5", "5"])
    fill(small, ["1", "1", "1", "1"])
    staff_login(client, "rmyy-admin")
    html = client.get(base(rmyy)).get_data(as_text=True)
    assert "100.0" in results_row(html, shown.department_id)
    assert "样本不足" in results_row(html, small.department_id)
    assert "样本不足" in results_row(html, "all")
    rows = csv_rows(client.get(f"{base(rmyy)}/results.csv"))
    assert rows["消化内科"][1] == "样本不足 5 份，不予显示"
    assert rows["全院"][1] == "样本不足 5 份，不予显示" and not any(c[:1].isdigit() for c in rows["全院"][1:])


def test_minimum_group_size_follows_the_settings(client, rmyy, make_batch):
    settings_for(rmyy.id).staff_min_group = 7
    batch = make_batch("XNK", 6)
    fill(batch, ["5"] * 6)
    staff_login(client, "rmyy-admin")
    row = results_row(client.get(base(rmyy)).get_data(as_text=True), batch.department_id)
    assert "样本不足 7 份，不予显示" in row and "100.0" not in row


def test_flagged_answers_do_not_count_towards_the_group(client, rmyy, make_batch):
    batch = make_batch("XNK", 6)
    fill(batch, ["5"] * 5)
    staff_responses(rmyy)[0].excluded = True
    staff_login(client, "rmyy-admin")
    row = results_row(client.get(base(rmyy)).get_data(as_text=True), batch.department_id)
    assert "样本不足" in row


def test_bad_results_filter_is_a_clear_400(client, rmyy, stf):
    staff_login(client, "rmyy-admin")
    assert client.get(f"{base(rmyy)}?year=abc").status_code == 400
    response = client.get(f"{base(rmyy)}/results.csv?template_id=999999")
    assert response.status_code == 400 and "无效" in response.get_data(as_text=True)


# Who may do what -------------------------------------------------------

def test_admin_of_another_hospital_gets_404_on_batches(client, rmyy, zyy, make_batch):
    batch = make_batch("XNK", 2)
    staff_login(client, "zyy-admin")
    for path in (f"{base(rmyy)}/batches/{batch.id}", f"{base(rmyy)}/batches/{batch.id}/slips.pdf",
                 f"{base(rmyy)}/batches/{batch.id}/links.csv", f"{base(rmyy)}", f"{base(rmyy)}/results.csv",
                 f"{base(zyy)}/batches/{batch.id}", f"{base(zyy)}/batches/{batch.id}/slips.pdf",
                 f"{base(zyy)}/batches/{batch.id}/links.csv"):
        assert client.get(path).status_code == 404, path


def test_department_handler_cannot_issue_tokens_and_sees_only_own_departments(client, rmyy, make_batch, stf):
    own = make_batch("XNK", 5)       # rmyy-handler is bound to XNK
    other = make_batch("XHNK", 5)
    fill(own, ["4"] * 5)
    fill(other, ["3"] * 5)
    staff_login(client, "rmyy-handler")
    assert client.get(f"{base(rmyy)}/batches").status_code == 403
    assert client.post(f"{base(rmyy)}/batches/new", data={"department_id": own.department_id,
                                                          "template_id": stf.id, "size": 3}).status_code == 403
    assert client.get(f"{base(rmyy)}/batches/{own.id}/links.csv").status_code == 403
    html = client.get(base(rmyy)).get_data(as_text=True)
    assert "75.0" in results_row(html, own.department_id)
    assert f'data-group="{other.department_id}"' not in html and 'data-group="all"' not in html
    assert "消化内科" not in client.get(f"{base(rmyy)}/results.csv").data.decode("utf-8")


def test_batch_list_does_not_count_a_small_group_of_answers(client, rmyy, make_batch):
    few = make_batch("XNK", 6)
    many = make_batch("XHNK", 6)
    fill(few, ["4"] * 3)
    fill(many, ["4"] * 5)
    staff_login(client, "rmyy-admin")
    html = client.get(f"{base(rmyy)}/batches").get_data(as_text=True)
    few_row = re.search(rf'<tr data-batch="{few.id}">(.*?)</tr>', html, re.S).group(1)
    many_row = re.search(rf'<tr data-batch="{many.id}">(.*?)</tr>', html, re.S).group(1)
    assert "不足 5" in few_row and '<td class="num">3</td>' not in few_row
    assert '<td class="num">5</td>' in many_row
    detail = client.get(f"{base(rmyy)}/batches/{few.id}").get_data(as_text=True)
    assert "<dd>不足 5</dd>" in detail


# Formula injection in the staff survey CSVs ------------------------------------------

def _cells(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8").lstrip("\ufeff"))))


def test_staff_survey_csvs_neutralise_formulas_in_department_names(client, rmyy, make_batch):
    batch = make_batch("XNK", 6)
    batch.department.name = "=HYPERLINK(\"http://evil.example\",\"点我\")"
    fill(batch, ["5", "4", "4", "2", "4"])
    db.session.flush()
    staff_login(client, "rmyy-admin")

    links = _cells(client.get(f"{base(rmyy)}/batches/{batch.id}/links.csv"))
    results = _cells(client.get(f"{base(rmyy)}/results.csv"))

    cells = [c for row in links[1:] + results[1:] for c in row if "HYPERLINK" in c]
    assert cells and all(c.startswith("'") for c in cells)
