"""Discharge follow-up: upload and API in, call list, outcomes, phone answers, rates,
purge of contact data, the one-time discharge-slip link, and tenant isolation."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core import signing
from core.audit import AuditEntry
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from organisation.models import Department, Institution, StaffUser, Touchpoint
from survey import discharges, followup, tasks
from survey.api import create_api_token, hash_token
from survey.models import (
    ApiToken,
    Channel,
    ContactRequest,
    Discharge,
    FollowupCall,
    FollowupOutcome,
    SurveyResponse,
    SurveySettings,
)
from tests.factories import demo_institution, demo_user, login

FIXTURES = Path(__file__).parent.parent / "fixtures"
PHONE = "13912345678"
OTHER_PHONE = "13698765432"
NAME = "王秀兰"
HEADER = "病区/科室编码,出院日期,患者姓名,联系电话,住院号\n"


@pytest.fixture(autouse=True)
def templates(builtin_templates):
    """The shipped questionnaires (not installed in the test database by default)."""
    return builtin_templates


@pytest.fixture
def hospital(rmyy) -> Institution:
    return rmyy


@pytest.fixture
def other_hospital(zyy) -> Institution:
    return zyy


@pytest.fixture
def nurse(ctx) -> StaffUser:
    return demo_user("rmyy-nurse")


@pytest.fixture
def other_nurse(ctx) -> StaffUser:
    return demo_user("zyy-nurse")


@pytest.fixture
def nurse_client(client, nurse):
    login(client, nurse)
    return client


@pytest.fixture
def today() -> date:
    return local_today()


def ward(institution: Institution, code: str) -> Touchpoint:
    return db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                                      Touchpoint.code == code))


def department(institution: Institution, code: str) -> Department:
    return db.session.scalar(select(Department).where(Department.institution_id == institution.id,
                                                      Department.code == code))


_refs = iter(range(100000, 999999))


def make_discharge(institution: Institution, *, unit: str = "B-XNK", discharge_date: date | None = None,
                   name: str = NAME, phone: str = PHONE, ref: str | None = None) -> Discharge:
    """A discharge created through the same validation and service as the upload and the API.

    It is validated as discharged today and then moved to ``discharge_date``, so that tests can
    place it in months the upload would refuse as past the retention period.
    """
    today = local_today()
    raw = {"unit": unit, "discharge_date": today.isoformat(), "patient_name": name, "phone": phone,
           "ref": ref or f"ZY{next(_refs)}"}
    settings = followup.followup_settings(institution.id)
    data, errors = discharges.check_discharge(raw, discharges.Units.load(institution), settings, today=today)
    assert not errors, errors
    discharge, _status = discharges.create_discharge(institution, data, source="upload", actor="test")
    if discharge_date is not None and discharge_date != today:
        discharge.discharge_date = discharge_date
        discharge.link_expires_at = discharges.link_expiry(discharge_date, settings)
        db.session.flush()
    return discharge


def discharges_of(institution: Institution) -> list[Discharge]:
    return list(db.session.scalars(select(Discharge).where(Discharge.institution_id == institution.id)
                                   .order_by(Discharge.id)))


def upload(client, institution: Institution, text: str, filename: str = "discharges.csv"):
    return client.post(f"/i/{institution.id}/survey/followup/upload",
                       data={"file": (io.BytesIO(text.encode("utf-8")), filename)},
                       content_type="multipart/form-data")


def body(response) -> str:
    return response.get_data(as_text=True)


def ipd_answers(**overrides) -> dict[str, str]:
    answers = {"q_IPD_NURSE_LISTEN": "4", "q_IPD_DOC_LISTEN": "3", "q_IPD_CLEAN": "4", "q_IPD_OVERALL": "5",
               "q_IPD_RECOMMEND": "4", "q_IPD_COMMENT": "护士很耐心"}
    answers.update(overrides)
    return answers


# Upload --------------------------------------------------------------------

def test_upload_stores_discharges_by_ward_or_department_and_only_a_hash_of_the_reference(
        nurse_client, hospital, today):
    day = (today - timedelta(days=1)).isoformat()
    text = HEADER + f"B-XNK,{day},{NAME},{PHONE},ZY2026001\nGK,{day},李四,028-86123456,ZY2026002\n"

    response = upload(nurse_client, hospital, text)

    assert response.status_code == 200, body(response)
    assert "导入成功：新增 2 条" in body(response)
    first, second = discharges_of(hospital)
    assert first.touchpoint_id == ward(hospital, "B-XNK").id
    assert first.department_id == department(hospital, "XNK").id
    assert (first.patient_name, first.phone, first.discharge_date) == (NAME, PHONE, today - timedelta(days=1))
    assert second.touchpoint_id is None and second.department_id == department(hospital, "GK").id
    assert second.phone == "02886123456"
    assert first.external_ref_hash == signing.hash_value("discharge-ref", "ZY2026001")
    assert "ZY2026001" not in json.dumps([first.external_ref_hash, first.source])
    assert first.outcome == FollowupOutcome.PENDING and first.attempts == 0
    assert first.link_expires_at > utcnow()


def test_upload_finds_ward_and_department_codes_whatever_their_case(nurse_client, hospital, today):
    """Codes are unique regardless of case, so a hospital system's lower-case export finds its wards."""
    day = (today - timedelta(days=1)).isoformat()
    text = HEADER + f"b-xnk,{day},{NAME},{PHONE},ZY2026011\ngk ,{day},李四,13800001111,ZY2026012\n"

    response = upload(nurse_client, hospital, text)

    assert response.status_code == 200, body(response)
    first, second = discharges_of(hospital)
    assert first.touchpoint_id == ward(hospital, "B-XNK").id
    assert second.department_id == department(hospital, "GK").id


def test_upload_accepts_xlsx_with_date_cells_and_numeric_phones(nurse_client, hospital, today):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["病区/科室编码", "出院日期", "患者姓名", "联系电话", "住院号"])
    sheet.append(["B-GK", datetime.combine(today, datetime.min.time()), NAME, int(PHONE), 778899])
    buffer = io.BytesIO()
    workbook.save(buffer)

    response = nurse_client.post(f"/i/{hospital.id}/survey/followup/upload",
                                 data={"file": (io.BytesIO(buffer.getvalue()), "list.xlsx")},
                                 content_type="multipart/form-data")

    assert response.status_code == 200, body(response)
    (discharge,) = discharges_of(hospital)
    assert (discharge.discharge_date, discharge.phone) == (today, PHONE)
    assert discharge.external_ref_hash == signing.hash_value("discharge-ref", "778899")


def test_upload_reads_dates_as_excel_writes_them_under_headers_with_extra_spaces(nurse_client, hospital, today):
    serial = (today - date(1899, 12, 30)).days
    header = " 病区／科室编码 ,出院  日期,患者姓名\u3000,联系 电话,住院号\n"
    written = [f"{today:%Y/%m/%d}", f"{today.year}.{today.month}.{today.day}",
               f"{today.year}年{today.month}月{today.day}日", str(serial), f"{today:%Y%m%d}", f"{today} 14:30"]
    text = header + "".join(f"B-XNK,{day},{NAME},{PHONE},D{n}\n" for n, day in enumerate(written))

    response = upload(nurse_client, hospital, text)

    assert response.status_code == 200, body(response)
    assert [d.discharge_date for d in discharges_of(hospital)] == [today] * len(written)


def test_an_xls_discharge_list_from_a_hospital_system_is_imported(ctx, hospital, nurse):
    content = (FIXTURES / "discharges.xls").read_bytes()  # every date means 2026-12-05

    report = discharges.import_discharges(hospital, "出院病人清单.xls", io.BytesIO(content), actor=nurse,
                                          today=date(2026, 12, 6))

    assert report.ok, report.errors
    assert report.created == 6
    rows = discharges_of(hospital)
    assert {d.discharge_date for d in rows} == {date(2026, 12, 5)}
    assert [d.phone for d in rows] == [PHONE, "02886123456", OTHER_PHONE, "13512345678", "13712345678",
                                       "13812345678"]
    assert rows[0].external_ref_hash == signing.hash_value("discharge-ref", "2026001")  # a number, no ".0"
    assert rows[0].touchpoint_id == ward(hospital, "B-XNK").id and rows[1].department_id == department(hospital,
                                                                                                      "GK").id


def test_an_unreadable_date_names_the_value_and_the_formats(nurse_client, hospital, today):
    response = upload(nurse_client, hospital, HEADER + f"B-XNK,12/05/2026,{NAME},{PHONE},U1\n")

    assert response.status_code == 400
    assert "无法识别的日期“12/05/2026”，请写成 2026-12-05 这样的日期" in body(response)
    assert discharges_of(hospital) == []


def test_upload_with_bad_rows_reports_each_row_and_column_and_writes_nothing(nurse_client, hospital, today):
    good = today.isoformat()
    text = HEADER + "\n".join([
        f"B-XNK,{good},{NAME},{PHONE},A1",          # row 2: fine
        f"NOPE,{good},{NAME},{PHONE},A2",           # row 3: unknown ward
        f"B-XNK,2026-02-30,{NAME},{PHONE},A3",      # row 4: impossible date
        f"B-XNK,{good},{NAME},12345,A4",            # row 5: bad phone
        f"B-XNK,{good},,{PHONE},A5",                # row 6: no name
        f"B-XNK,{good},{NAME},{PHONE},A1",          # row 7: same reference as row 2
        f"B-XNK,{(today + timedelta(days=2)).isoformat()},{NAME},{PHONE},A7",  # row 8: future
    ]) + "\n"

    response = upload(nurse_client, hospital, text)

    assert response.status_code == 400
    page = body(response)
    assert "未写入任何数据" in page
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>', page)
    found = {(int(row), column) for row, column, _message in rows}
    assert found == {(3, "病区/科室编码"), (4, "出院日期"), (5, "联系电话"), (6, "患者姓名"), (7, "住院号"),
                     (8, "出院日期")}
    messages = " ".join(message for _r, _c, message in rows)
    assert "病区或科室编码 NOPE 不存在" in messages and "与第 2 行重复" in messages
    assert "出院日期不能晚于今天" in messages
    assert discharges_of(hospital) == []


def test_upload_refuses_a_file_that_is_not_a_discharge_list(nurse_client, hospital):
    wrong_columns = upload(nurse_client, hospital, "姓名,电话\n张三,13800000000\n")
    wrong_type = upload(nurse_client, hospital, HEADER, filename="list.txt")

    assert wrong_columns.status_code == 400 and "缺少必填列" in body(wrong_columns)
    assert wrong_type.status_code == 400 and "只支持 CSV、XLSX 或 XLS 文件" in body(wrong_type)
    assert discharges_of(hospital) == []


def test_reimporting_the_same_reference_updates_instead_of_duplicating(nurse_client, hospital, today):
    day = today.isoformat()
    upload(nurse_client, hospital, HEADER + f"B-XNK,{day},{NAME},{PHONE},ZY1\nB-GK,{day},李四,{PHONE},ZY2\n")

    again = upload(nurse_client, hospital,
                   HEADER + f"B-XNK,{day},{NAME},{OTHER_PHONE},ZY1\nB-GK,{day},李四,{PHONE},ZY2\n")

    assert again.status_code == 200
    assert "新增 0，更新 1，无变化 1" in body(again)
    first, second = discharges_of(hospital)
    assert first.phone == OTHER_PHONE and second.phone == PHONE
    assert db.session.scalar(select(func.count()).select_from(Discharge)
                             .where(Discharge.institution_id == hospital.id)) == 2


def test_the_slip_link_uses_the_public_base_url_when_one_is_set(app, monkeypatch, hospital):
    discharge = make_discharge(hospital)
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://pj.example.cn")
    with app.test_request_context("/"):
        url = discharges.discharge_link_url(discharge)
    assert url == f"https://pj.example.cn/d/{discharges.discharge_link_token(discharge)}"


def test_the_upload_template_has_the_expected_columns(nurse_client, hospital):
    response = nurse_client.get(f"/i/{hospital.id}/survey/followup/upload/template.csv")

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="discharges-template.csv"'
    assert response.data == ("\ufeff" + HEADER.replace("\n", "\r\n")).encode()
    (header,) = csv.reader(io.StringIO(body(response).lstrip("\ufeff")))
    assert header == HEADER.strip().split(",")


# API -----------------------------------------------------------------------

@pytest.fixture
def api_token(ctx, hospital) -> str:
    _token, clear = create_api_token(hospital, name="HIS", actor=demo_user("rmyy-admin"))
    db.session.commit()
    return clear


def test_a_token_name_is_required_and_at_most_80_characters(hospital):
    admin = demo_user("rmyy-admin")
    token, _clear = create_api_token(hospital, name=" HIS 出院接口 ", actor=admin)
    assert token.name == "HIS 出院接口"
    for name, message in [("  ", "请填写令牌名称"), ("长" * 81, "不能超过 80 字")]:
        with pytest.raises(followup.FollowupError, match=message) as refused:
            create_api_token(hospital, name=name, actor=admin)
        assert refused.value.field == "name"


def post_api(client, payload, token: str | None, *, raw: bytes | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else json.dumps(payload)
    return client.post("/api/v1/discharges", data=data, headers=headers, content_type="application/json")


def api_item(today: date, **overrides):
    item = {"ward": "B-XNK", "discharge_date": today.isoformat(), "patient_name": NAME, "phone": PHONE,
            "ref": "HIS-0001"}
    item.update(overrides)
    return item


def test_api_refuses_missing_unknown_and_revoked_tokens_with_401(client, hospital, api_token, today):
    token_row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(api_token)))

    missing = post_api(client, api_item(today), None)
    wrong = post_api(client, api_item(today), "tj_not-a-real-token")
    basic = client.post("/api/v1/discharges", json=api_item(today), headers={"Authorization": "Basic abc"})
    token_row.revoked_at = utcnow()
    revoked = post_api(client, api_item(today), api_token)

    for response in (missing, wrong, basic, revoked):
        assert response.status_code == 401
        assert response.is_json and "访问令牌" in response.get_json()["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert discharges_of(hospital) == []


def test_api_refuses_a_token_without_the_discharge_scope(client, hospital, today):
    token, clear = create_api_token(hospital, name="read only", actor=demo_user("rmyy-admin"))
    token.scopes = []

    response = post_api(client, api_item(today), clear)

    assert response.status_code == 403 and response.is_json


def test_api_stores_one_object_and_returns_its_id_and_one_time_survey_url(client, hospital, api_token, today):
    response = post_api(client, api_item(today), api_token)

    assert response.status_code == 201, response.get_json()
    (item,) = response.get_json()["items"]
    discharge = db.session.get(Discharge, item["id"])
    assert discharge.institution_id == hospital.id and discharge.source == "api"
    assert item["status"] == "created"
    assert item["survey_url"].endswith(f"/d/{discharges.discharge_link_token(discharge)}")
    token_row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(api_token)))
    assert token_row.last_used_at is not None
    assert client.get(item["survey_url"].split("tingjian.test", 1)[1]).status_code == 200


def test_api_accepts_a_list_and_a_resend_updates_the_same_discharge(client, hospital, api_token, today):
    items = [api_item(today, ref="A-1"), api_item(today, ref="A-2", ward=None, department="GK", phone=int(PHONE))]

    first = post_api(client, items, api_token)
    again = post_api(client, [api_item(today, ref="A-1", phone=OTHER_PHONE)], api_token)

    assert first.status_code == 201 and [i["index"] for i in first.get_json()["items"]] == [0, 1]
    assert again.status_code == 201 and again.get_json()["items"][0]["status"] == "updated"
    assert again.get_json()["items"][0]["id"] == first.get_json()["items"][0]["id"]
    assert [d.phone for d in discharges_of(hospital)] == [OTHER_PHONE, PHONE]


def test_api_reads_dates_with_the_same_parser_as_the_upload(client, hospital, api_token, today):
    items = [api_item(today, ref="D-1", discharge_date=f"{today:%Y/%m/%d}"),
             api_item(today, ref="D-2", discharge_date=f"{today.year}年{today.month}月{today.day}日")]

    response = post_api(client, items, api_token)

    assert response.status_code == 201, response.get_json()
    assert [d.discharge_date for d in discharges_of(hospital)] == [today, today]


def test_api_reports_every_bad_item_in_chinese_and_stores_none(client, hospital, api_token, today):
    items = [
        api_item(today, ref="OK-1"),
        api_item(today, ref="B-2", ward="NOPE"),
        api_item(today, ref="B-3", discharge_date="03/05/2026", phone="abc"),
        "not an object",
        api_item(today, ref="B-5", patient_name={"nested": True}),
        api_item(today, ref="OK-1"),
    ]

    response = post_api(client, items, api_token)

    assert response.status_code == 400
    errors = {(e["index"], e["field"]): e["message"] for e in response.get_json()["errors"]}
    assert set(errors) == {(1, "ward"), (2, "discharge_date"), (2, "phone"), (3, "_item"), (4, "patient_name"),
                           (5, "ref")}
    assert "不存在" in errors[(1, "ward")] and "请写成 2026-12-05 这样的日期" in errors[(2, "discharge_date")]
    assert "未保存任何记录" in response.get_json()["message"]
    assert discharges_of(hospital) == []


@pytest.mark.parametrize("raw", [b"{not json", b"", b"null", b"[]", b"42", b'"text"', b"[" * 5000 + b"]" * 5000,
                                 "\u00ff".encode("latin-1"), b'{"ward": []}'])
def test_api_answers_bad_json_with_400_never_500(client, api_token, raw):
    response = post_api(client, None, api_token, raw=raw)

    assert response.status_code == 400
    assert response.is_json and response.get_json()["message"]


def test_a_nul_byte_in_a_discharge_field_is_a_400_naming_the_field(client, hospital, api_token, today):
    before = db.session.scalar(select(func.count()).select_from(Discharge))

    response = post_api(client, api_item(today, patient_name="王\x00秀兰"), api_token)

    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(0, "patient_name")]
    assert "无效字符" in errors[0]["message"]
    assert db.session.scalar(select(func.count()).select_from(Discharge)) == before


def test_managers_create_tokens_shown_once_and_revoke_them(client, hospital, today):
    admin = demo_user("rmyy-admin")
    login(client, admin)

    created = client.post(f"/i/{hospital.id}/survey/api-tokens", data={"name": "HIS 出院接口"})

    assert created.status_code == 201
    clear = re.search(r'<code id="new-token">([^<]+)</code>', body(created))[1]
    row = db.session.scalar(select(ApiToken).where(ApiToken.institution_id == hospital.id))
    assert row.token_hash == hashlib.sha256(clear.encode()).hexdigest() and row.scopes == ["discharges:write"]
    listing = client.get(f"/i/{hospital.id}/survey/api-tokens")
    assert clear not in body(listing) and row.prefix in body(listing)
    assert post_api(client, api_item(today), clear).status_code == 201

    revoked = client.post(f"/i/{hospital.id}/survey/api-tokens/{row.id}/revoke")

    assert revoked.status_code == 302
    assert post_api(client, api_item(today, ref="later"), clear).status_code == 401


def test_nurses_cannot_manage_api_tokens(nurse_client, hospital):
    assert nurse_client.get(f"/i/{hospital.id}/survey/api-tokens").status_code == 403
    assert nurse_client.post(f"/i/{hospital.id}/survey/api-tokens", data={"name": "x"}).status_code == 403


# Call list and outcomes ---------------------------------------------------

def test_call_list_shows_due_patients_oldest_first_with_name_phone_and_due_date(nurse_client, hospital, today):
    settings = followup.followup_settings(hospital.id)
    three = make_discharge(hospital, discharge_date=today - timedelta(days=3), name="三天前", phone="13900000003")
    seven = make_discharge(hospital, discharge_date=today - timedelta(days=7), name="七天前", phone="13900000007")
    make_discharge(hospital, discharge_date=today - timedelta(days=8), name="八天前")      # window closed
    fresh = make_discharge(hospital, discharge_date=today, name="今天出院", phone="13900000000")
    done = make_discharge(hospital, discharge_date=today - timedelta(days=2), name="接通患者")
    followup.record_call(done, FollowupOutcome.REACHED, nurse=demo_user("rmyy-nurse"))
    purged = make_discharge(hospital, discharge_date=today - timedelta(days=1), name="清除患者")
    purged.purged_at, purged.patient_name, purged.phone = utcnow(), None, None
    make_discharge(demo_institution("zyy"), unit="B-ZYNK", name="别家患者")

    calls = followup.due_list(hospital, today=today)
    page = body(nurse_client.get(f"/i/{hospital.id}/survey/followup"))

    assert [c.discharge.id for c in calls] == [seven.id, three.id, fresh.id]
    assert settings.followup_days == 7
    assert [(c.days_since, c.due_by) for c in calls] == [(7, today), (3, today + timedelta(days=4)),
                                                         (0, today + timedelta(days=7))]
    assert page.index("七天前") < page.index("三天前") < page.index("今天出院")
    assert "13900000003" in page and "心血管内科病区" in page
    assert (today + timedelta(days=4)).isoformat() in page and "今天截止" in page
    for absent in ("八天前", "接通患者", "清除患者", "别家患者"):
        assert absent not in page.split("<table", 1)[1]


def test_no_answer_keeps_the_patient_due_and_counts_attempts(nurse_client, hospital, today):
    discharge = make_discharge(hospital, discharge_date=today - timedelta(days=1))
    url = f"/i/{hospital.id}/survey/followup/{discharge.id}/call"

    first = nurse_client.post(url, data={"outcome": "no_answer"})
    second = nurse_client.post(url, data={"outcome": "no_answer"})

    assert first.status_code == second.status_code == 302
    db.session.refresh(discharge)
    assert (discharge.attempts, discharge.outcome) == (2, FollowupOutcome.NO_ANSWER)
    assert [c.discharge.id for c in followup.due_list(hospital, today=today)] == [discharge.id]
    calls = db.session.scalars(select(FollowupCall).where(FollowupCall.discharge_id == discharge.id)).all()
    assert [c.nurse_id for c in calls] == [demo_user("rmyy-nurse").id] * 2


@pytest.mark.parametrize("outcome", ["wrong_number", "declined"])
def test_final_outcomes_end_the_follow_up(nurse_client, hospital, today, outcome):
    discharge = make_discharge(hospital, discharge_date=today - timedelta(days=1))
    url = f"/i/{hospital.id}/survey/followup/{discharge.id}/call"

    assert nurse_client.post(url, data={"outcome": outcome}).status_code == 302
    again = nurse_client.post(url, data={"outcome": "no_answer"})

    assert again.status_code == 409 and "回访已结束" in body(again)
    assert followup.due_list(hospital, today=today) == []
    db.session.refresh(discharge)
    assert discharge.attempts == 1


def test_an_unknown_outcome_is_refused_with_400(nurse_client, hospital, today):
    discharge = make_discharge(hospital)

    response = nurse_client.post(f"/i/{hospital.id}/survey/followup/{discharge.id}/call",
                                 data={"outcome": "pending"})

    assert response.status_code == 400 and "请选择有效的回访结果" in body(response)


def test_reached_leads_to_phone_answers_stored_with_phone_channel_and_interviewer(nurse_client, hospital, nurse,
                                                                                  today):
    discharge = make_discharge(hospital, discharge_date=today - timedelta(days=2))
    reached = nurse_client.post(f"/i/{hospital.id}/survey/followup/{discharge.id}/call", data={"outcome": "reached"})
    answers_url = f"/i/{hospital.id}/survey/followup/{discharge.id}/answers"
    assert reached.status_code == 302 and reached.headers["Location"].endswith(answers_url)
    form_page = nurse_client.get(answers_url)
    submission_id = re.search(r'name="submission_id" type="hidden" value="([^"]+)"', body(form_page))[1]

    saved = nurse_client.post(answers_url, data={"submission_id": submission_id, **ipd_answers()})
    repeat = nurse_client.post(answers_url, data={"submission_id": submission_id, **ipd_answers()})

    assert form_page.status_code == 200 and "总的来说，您对这次住院满意吗？" in body(form_page)
    assert saved.status_code == 302 and repeat.status_code == 302
    (response,) = db.session.scalars(select(SurveyResponse).where(SurveyResponse.institution_id == hospital.id)).all()
    assert response.channel == Channel.PHONE_FOLLOWUP and response.interviewer_id == nurse.id
    assert response.touchpoint_id == ward(hospital, "B-XNK").id and response.overall_score == 100.0
    assert response.version.template.code == "IPD" and response.answer("IPD_COMMENT").value == "护士很耐心"
    call = db.session.scalar(select(FollowupCall).where(FollowupCall.discharge_id == discharge.id))
    assert call.response_id == response.id
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "followup.answers")) is not None


def test_phone_answers_missing_the_required_overall_rating_are_refused(nurse_client, hospital, nurse):
    discharge = make_discharge(hospital)
    followup.record_call(discharge, FollowupOutcome.REACHED, nurse=nurse)
    answers = ipd_answers()
    del answers["q_IPD_OVERALL"]

    response = nurse_client.post(f"/i/{hospital.id}/survey/followup/{discharge.id}/answers",
                                 data={"submission_id": "a" * 32, **answers})

    assert response.status_code == 400 and "请选择一项" in body(response)
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)
                             .where(SurveyResponse.institution_id == hospital.id)) == 0


def test_a_bad_phone_in_phone_answers_is_shown_at_the_phone_box(nurse_client, hospital, nurse):
    discharge = make_discharge(hospital)
    followup.record_call(discharge, FollowupOutcome.REACHED, nurse=nurse)

    response = nurse_client.post(f"/i/{hospital.id}/survey/followup/{discharge.id}/answers",
                                 data={"submission_id": "c" * 32, **ipd_answers(q_IPD_CONTACT="yes"),
                                       "contact_phone": "12345"})

    assert response.status_code == 400
    phone_box = body(response).split('name="contact_phone"')[0].rsplit('<div class="field', 1)[1]
    assert phone_box.startswith(" has-error")
    assert db.session.scalar(select(func.count()).select_from(SurveyResponse)
                             .where(SurveyResponse.institution_id == hospital.id)) == 0


def test_answers_cannot_be_entered_before_the_patient_was_reached(nurse_client, hospital):
    discharge = make_discharge(hospital)

    response = nurse_client.post(f"/i/{hospital.id}/survey/followup/{discharge.id}/answers",
                                 data={"submission_id": "b" * 32, **ipd_answers()})

    assert response.status_code == 400 and "已接通" in body(response)


# Rates ---------------------------------------------------------------------

def test_rates_by_ward_and_month_count_only_calls_within_the_follow_up_window(client, hospital, nurse):
    may = date(2026, 5, 10)
    xnk = [make_discharge(hospital, unit="B-XNK", discharge_date=may) for _ in range(4)]
    gk = make_discharge(hospital, unit="B-GK", discharge_date=may)
    make_discharge(hospital, unit="B-XNK", discharge_date=date(2026, 6, 1))  # next month
    in_time = datetime(2026, 5, 17, 15, 0, tzinfo=UTC)   # 23:00 Beijing on day 7: in time
    late = datetime(2026, 5, 17, 16, 30, tzinfo=UTC)     # 00:30 Beijing on day 8: too late
    followup.record_call(xnk[0], FollowupOutcome.REACHED, nurse=nurse, now=in_time)
    followup.record_call(xnk[1], FollowupOutcome.NO_ANSWER, nurse=nurse, now=in_time - timedelta(days=3))
    followup.record_call(xnk[1], FollowupOutcome.REACHED, nurse=nurse, now=in_time - timedelta(days=2))
    followup.record_call(xnk[2], FollowupOutcome.REACHED, nurse=nurse, now=late)
    followup.record_call(gk, FollowupOutcome.DECLINED, nurse=nurse, now=in_time)

    report = followup.followup_rates(hospital, 2026, 5)

    rows = {r.label: (r.discharges, r.called, r.reached, r.rate, r.meets_target) for r in report.rows}
    assert rows == {"心血管内科病区": (4, 2, 2, 50.0, False), "骨科病区": (1, 1, 0, 0.0, False)}
    assert (report.total.discharges, report.total.reached, report.total.rate) == (5, 2, 40.0)
    assert report.target == 100.0
    login(client, demo_user("rmyy-leader"))
    page = client.get(f"/i/{hospital.id}/survey/followup-rates?month=2026-05")
    assert page.status_code == 200
    assert "心血管内科病区" in body(page) and "50.0%" in body(page) and "40.0%" in body(page)
    assert "100%" in body(page)


def test_rates_page_refuses_a_malformed_month_with_400(nurse_client, hospital):
    response = nurse_client.get(f"/i/{hospital.id}/survey/followup-rates?month=2026-13")

    assert response.status_code == 400 and "月份格式为 YYYY-MM" in body(response)


def test_a_full_month_of_reached_patients_meets_the_100_percent_target(ctx, hospital, nurse):
    june = [make_discharge(hospital, unit="B-FCK", discharge_date=date(2026, 6, 3)) for _ in range(3)]
    for discharge in june:
        followup.record_call(discharge, FollowupOutcome.REACHED, nurse=nurse,
                             now=datetime(2026, 6, 4, 2, tzinfo=UTC))

    (row,) = followup.followup_rates(hospital, 2026, 6).rows

    assert (row.rate, row.gap, row.meets_target) == (100.0, 0.0, True)


# Purge ---------------------------------------------------------------------

def test_purge_nulls_old_names_and_phones_once_and_keeps_recent_ones(ctx, hospital, today):
    old = make_discharge(hospital, discharge_date=today - timedelta(days=10))
    old.discharge_date = today - timedelta(days=15)        # past the 14-day retention
    boundary = make_discharge(hospital, discharge_date=today - timedelta(days=14))
    recent = make_discharge(hospital, discharge_date=today - timedelta(days=2))
    response = SurveyResponse(institution_id=hospital.id, submission_id="c" * 32, channel="touchpoint_qr",
                              template_version_id=followup.inpatient_version().id, answers=[])
    db.session.add(response)
    db.session.flush()
    old_request = ContactRequest(institution_id=hospital.id, response_id=response.id, phone=OTHER_PHONE,
                                 created_at=utcnow() - timedelta(days=15))
    db.session.add(old_request)
    db.session.flush()

    # Noon in Beijing on the fixture's "today": the two runs must not straddle local midnight,
    # or the boundary discharge would rightly fall due in the second one.
    noon = datetime.combine(today, time(12, 0), tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    first = discharges.purge_contact_data(now=noon)
    stamp = old.purged_at
    second = discharges.purge_contact_data(now=noon + timedelta(minutes=5))

    assert first == {"discharges": 1, "contact_requests": 1}
    assert second == {"discharges": 0, "contact_requests": 0}
    for row in (old, boundary, recent, old_request):
        db.session.refresh(row)
    assert (old.patient_name, old.phone) == (None, None) and old.purged_at == stamp is not None
    assert old_request.phone is None and old_request.purged_at is not None
    assert (boundary.patient_name, boundary.phone, boundary.purged_at) == (NAME, PHONE, None)
    assert (recent.patient_name, recent.phone) == (NAME, PHONE)
    stored = db.session.execute(select(Discharge.patient_name, Discharge.phone).where(Discharge.id == old.id)).one()
    assert tuple(stored) == (None, None)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "survey.purge_contact_data"))
    assert entry.institution_id == hospital.id and entry.data["discharges"] == 1


def test_purge_follows_each_hospitals_retention_setting(ctx, hospital, today):
    db.session.add(SurveySettings(institution_id=hospital.id, contact_retention_days=30))
    db.session.flush()
    discharge = make_discharge(hospital, discharge_date=today - timedelta(days=20))

    assert discharges.purge_contact_data(now=utcnow())["discharges"] == 0
    db.session.refresh(discharge)
    assert discharge.phone == PHONE


def test_the_purge_job_is_registered_daily_and_commits(app, ctx, hospital, today):
    from core.tasks import periodic_jobs

    job = next(j for j in periodic_jobs(app) if j.name == "survey-contact-purge")
    assert job.cron == "30 2 * * *" and job.func is tasks.purge_contact_data_job
    old = make_discharge(hospital, discharge_date=today - timedelta(days=1))
    old.discharge_date = today - timedelta(days=40)

    assert tasks.purge_contact_data_job()["discharges"] >= 1
    db.session.refresh(old)
    assert old.phone is None


def test_a_reupload_after_purge_does_not_bring_contact_data_back(ctx, hospital, today):
    discharge = make_discharge(hospital, discharge_date=today - timedelta(days=3), ref="KEEP-1")
    discharge.purged_at, discharge.patient_name, discharge.phone = utcnow(), None, None

    again = make_discharge(hospital, discharge_date=today - timedelta(days=3), ref="KEEP-1")

    assert again.id == discharge.id and (again.patient_name, again.phone) == (None, None)


# The one-time discharge-slip link -----------------------------------------

def form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(submission_id|form_token)" value="([^"]+)"', page))


def test_the_discharge_slip_link_opens_the_inpatient_survey_once(client, hospital, today):
    discharge = make_discharge(hospital, discharge_date=today - timedelta(days=1))
    url = f"/d/{discharges.discharge_link_token(discharge)}"

    opened = client.get(url)
    fields = form_fields(body(opened))
    stored = client.post(url, data={**fields, **ipd_answers()})
    retry = client.post(url, data={**fields, **ipd_answers()})
    second_use = client.get(url)
    other_form = client.post(url, data={"submission_id": "d" * 32, **ipd_answers(q_IPD_OVERALL="1")})

    assert opened.status_code == 200 and "住院患者满意度调查" in body(opened) and NAME not in body(opened)
    assert stored.status_code == 303 and "/thanks/" in stored.headers["Location"]
    assert retry.status_code == 303 and retry.headers["Location"] == stored.headers["Location"]
    assert second_use.status_code == 200 and "此链接已使用，感谢您的评价" in body(second_use)
    assert other_form.status_code == 200 and "此链接已使用，感谢您的评价" in body(other_form)
    (response,) = db.session.scalars(select(SurveyResponse).where(SurveyResponse.institution_id == hospital.id)).all()
    assert response.channel == Channel.DISCHARGE_LINK and response.interviewer_id is None
    assert response.department_id == department(hospital, "XNK").id
    db.session.refresh(discharge)
    assert discharge.link_used_at is not None


def test_a_failed_slip_survey_does_not_use_up_the_link(client, hospital):
    discharge = make_discharge(hospital)
    url = f"/d/{discharges.discharge_link_token(discharge)}"
    fields = form_fields(body(client.get(url)))
    answers = ipd_answers()
    del answers["q_IPD_OVERALL"]

    refused = client.post(url, data={**fields, **answers})

    assert refused.status_code == 400 and "请选择一项" in body(refused)
    db.session.refresh(discharge)
    assert discharge.link_used_at is None
    assert client.get(url).status_code == 200


def test_an_expired_or_forged_slip_link_shows_a_friendly_notice(client, hospital):
    discharge = make_discharge(hospital)
    discharge.link_expires_at = utcnow() - timedelta(minutes=1)
    forged = f"{discharge.id}-{'a' * 12}"

    expired = client.get(f"/d/{discharges.discharge_link_token(discharge)}")
    unknown = client.get(f"/d/{forged}")
    garbage = client.post("/d/%00%ff", data={"submission_id": "x"})

    assert expired.status_code == 410 and "评价链接已过期" in body(expired)
    assert unknown.status_code == 404 and "链接无法识别" in body(unknown)
    assert garbage.status_code == 404


def test_the_printable_slip_carries_the_qr_code_and_the_invitation(nurse_client, hospital):
    discharge = make_discharge(hospital)

    page = nurse_client.get(f"/i/{hospital.id}/survey/followup/{discharge.id}/slip")

    assert page.status_code == 200
    assert "扫码评价本次住院" in body(page) and 'src="data:image/svg+xml;base64,' in body(page)
    assert PHONE not in body(page) and NAME not in body(page)


# Tenant isolation and personal data ----------------------------------------

def test_a_nurse_of_another_hospital_gets_404_on_this_hospitals_discharges(client, hospital, other_hospital,
                                                                           other_nurse):
    discharge = make_discharge(hospital)
    login(client, other_nurse)
    own = f"/i/{other_hospital.id}/survey/followup/{discharge.id}"
    theirs = f"/i/{hospital.id}/survey/followup"

    responses = [
        client.get(theirs),
        client.get(f"{theirs}/discharges"),
        client.post(f"{theirs}/{discharge.id}/call", data={"outcome": "reached"}),
        client.post(f"{own}/call", data={"outcome": "reached"}),
        client.get(f"{own}/slip"),
        client.get(f"{own}/answers"),
    ]

    assert [r.status_code for r in responses] == [404] * 6
    db.session.refresh(discharge)
    assert discharge.attempts == 0
    assert PHONE not in "".join(body(r) for r in responses)


def test_staff_without_follow_up_permission_are_refused(client, hospital):
    login(client, demo_user("rmyy-handler"))

    assert client.get(f"/i/{hospital.id}/survey/followup").status_code == 403


def test_the_nurse_sees_the_follow_up_entry_in_the_navigation(nurse_client, hospital):
    page = body(nurse_client.get(f"/i/{hospital.id}/survey/followup"))

    assert "出院随访" in page and f'href="/i/{hospital.id}/survey/followup"' in page


def test_phone_and_name_appear_only_on_the_call_list(nurse_client, nurse, hospital, today):
    discharge = make_discharge(hospital, discharge_date=today - timedelta(days=1), ref="PII-1")
    followup.record_call(discharge, FollowupOutcome.NO_ANSWER, nurse=nurse)
    base = f"/i/{hospital.id}/survey/followup"

    call_list = body(nurse_client.get(base))
    others = {
        "discharges": nurse_client.get(f"{base}/discharges"),
        "slip": nurse_client.get(f"{base}/{discharge.id}/slip"),
        "rates": nurse_client.get(f"/i/{hospital.id}/survey/followup-rates"),
        "survey": nurse_client.get(f"/d/{discharges.discharge_link_token(discharge)}"),
    }

    assert PHONE in call_list and NAME in call_list
    for name, response in others.items():
        assert response.status_code == 200, name
        assert PHONE not in body(response) and NAME not in body(response), name
    assert "139****5678" in body(others["discharges"])
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.institution_id == hospital.id)).all()
    dumped = json.dumps([(e.data, e.target_label, e.actor_label) for e in audit], ensure_ascii=False)
    assert PHONE not in dumped and NAME not in dumped and "PII-1" not in dumped


def test_phone_numbers_never_reach_the_logs(client, nurse, hospital, api_token, today, caplog):
    caplog.set_level(logging.DEBUG)
    login(client, nurse)
    upload(client, hospital, HEADER + f"B-XNK,{today.isoformat()},{NAME},{PHONE},LOG-1\n")
    upload(client, hospital, HEADER + f"B-XNK,{today.isoformat()},{NAME},{PHONE}x,LOG-2\n")  # an error row
    post_api(client, api_item(today, ref="LOG-3", phone=OTHER_PHONE), api_token)
    post_api(client, api_item(today, ref="LOG-4", phone="12"), api_token)
    discharge = discharges_of(hospital)[0]
    client.post(f"/i/{hospital.id}/survey/followup/{discharge.id}/call", data={"outcome": "reached"})
    client.post(f"/i/{hospital.id}/survey/followup/{discharge.id}/answers",
                data={"submission_id": "e" * 32, **ipd_answers(q_IPD_CONTACT="yes"), "contact_phone": PHONE})
    old = discharges_of(hospital)[1]
    old.discharge_date = today - timedelta(days=30)
    tasks.purge_contact_data_job()

    assert discharges_of(hospital), "the flows above must have run"
    assert PHONE not in caplog.text and OTHER_PHONE not in caplog.text and NAME not in caplog.text


def test_the_slip_and_staff_forms_share_the_patient_limits_and_answer_with_the_patient_notice(
        client, hospital, app, monkeypatch):
    monkeypatch.setitem(app.config, "SURVEY_DEVICE_LIMIT", "2 per minute")
    discharge = make_discharge(hospital)
    url = f"/d/{discharges.discharge_link_token(discharge)}"
    fields = form_fields(body(client.get(url)))

    first = client.post(url, data={**fields, **ipd_answers()})
    second = client.post(url, data={**fields, **ipd_answers()})  # a retry still counts
    staff_form = client.post("/s/no-such-token", data={"submission_id": "e" * 32})

    assert (first.status_code, second.status_code) == (303, 303)
    assert staff_form.status_code == 429  # the third patient POST of this phone in the minute
    assert "提交过于频繁" in body(staff_form) and "staff.css" not in body(staff_form)
    assert 0 < int(staff_form.headers["Retry-After"]) <= 60
    assert client.post(url, data={**fields, **ipd_answers()}).status_code == 429
