"""The complaint ledger (投诉台账): filters, fixed columns, no personal data, streamed XLSX/CSV exports.

``october_ledger`` (tests/complaints/conftest.py) builds the C15 fixture, with its hand counts in HAND.
"""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, select

from complaints import deadlines, demo, ledger
from complaints.demo.writing import write_rows
from complaints.models import CaseDepartment, Complaint, Reply
from core.extensions import db
from organisation.models import Institution
from tests.complaints.conftest import HAND, PHONE, Ledger, add_case, department, staff_login
from tests.factories import demo_user

COLUMNS = ["案件编号", "状态", "投诉渠道", "首诉接待人", "主办科室", "协办科室", "投诉类别", "事由", "接收时间",
           "办理时限", "答复时间", "办结时间", "是否按时答复", "处理结果", "不予受理原因", "满意度", "整改状态"]
RECEIVED, DUE, ON_TIME = COLUMNS.index("接收时间"), COLUMNS.index("办理时限"), COLUMNS.index("是否按时答复")


OCTOBER = ledger.LedgerFilter(date_from=date(2026, 10, 1), date_to=date(2026, 10, 31))


def numbers(institution: Institution, f: ledger.LedgerFilter) -> set[str]:
    return {row.case_number for row in ledger.iter_rows(institution, f)}


def keys(data: Ledger, *names: str) -> set[str]:
    return {data.cases[n].case_number for n in names}


# Filters -----------------------------------------------------------------------------

def test_october_ledger_lists_every_case_received_in_the_beijing_month(october_ledger):
    rows = list(ledger.iter_rows(october_ledger.rmyy, OCTOBER))

    assert len(rows) == HAND["rows"]
    assert {r.case_number for r in rows} == {c.case_number for c in october_ledger.cases.values()}
    assert [r.received_at for r in rows] == sorted(r.received_at for r in rows)


@pytest.mark.parametrize("field, value, expected", [
    ("status", "declined", {"D1", "D2"}),
    ("status", "done", {"A1", "A2", "A3", "A4", "A5", "A14", "A15", "M1", "A11", "A12"}),
    ("status", "open", {"A8", "A9", "A10", "A13", "A16", "R1"}),
    ("channel", "hotline_12345", {"A5"}),
    ("timeliness", "on_time", {"A1", "A2", "A4", "A6", "A14", "A15"}),
    ("timeliness", "overdue", {"A3", "A5", "A7", "A8", "A13", "A16"}),
    ("satisfaction", "satisfied", {"A1", "A5", "A14", "M1"}),
    ("satisfaction", "unsatisfied", {"A3", "A4", "D1"}),
])
def test_ledger_filters_select_the_hand_picked_cases(october_ledger, field, value, expected):
    f = ledger.LedgerFilter(date_from=OCTOBER.date_from, date_to=OCTOBER.date_to, **{field: value})

    assert numbers(october_ledger.rmyy, f) == keys(october_ledger, *expected)


def test_department_filter_finds_lead_and_co_handled_cases(october_ledger):
    cwk = department(october_ledger.rmyy, "CWK")
    f = ledger.LedgerFilter(date_from=OCTOBER.date_from, date_to=OCTOBER.date_to, department_id=cwk.id)

    assert numbers(october_ledger.rmyy, f) == keys(october_ledger, "A5", "A14")


def test_category_filter_and_unanswered_satisfaction(october_ledger, categories):
    rmyy = october_ledger.rmyy
    by_category = ledger.LedgerFilter(date_from=OCTOBER.date_from, date_to=OCTOBER.date_to,
                                      category_id=categories["charges"].id)
    not_answered = ledger.LedgerFilter(date_from=OCTOBER.date_from, date_to=OCTOBER.date_to, satisfaction="none")

    assert numbers(rmyy, by_category) == keys(october_ledger, "A5")
    assert numbers(rmyy, not_answered) == keys(october_ledger, "A6", "A7", "A8", "A9", "A10", "A11", "A12", "A13",
                                               "A15", "A16", "D2", "R1")


def test_received_date_bounds_are_beijing_days(october_ledger):
    rmyy = october_ledger.rmyy

    assert numbers(rmyy, ledger.LedgerFilter(date_to=date(2026, 9, 30))) == {"TS2026-20001"}
    assert numbers(rmyy, ledger.LedgerFilter(date_from=date(2026, 11, 1))) == {"TS2026-20002"}


def test_ledger_is_scoped_to_its_institution(october_ledger):
    assert "TS2026-30001" not in numbers(october_ledger.rmyy, ledger.LedgerFilter())
    assert numbers(october_ledger.zyy, ledger.LedgerFilter()) == {"TS2026-30001"}


# Fixed columns (C15) and the on-time column ---------------------------------------------

def test_columns_are_the_fixed_c15_columns():
    assert ledger.columns() == COLUMNS


def test_on_time_column_follows_the_deadline(october_ledger):
    rows = {r.case_number: r for r in ledger.iter_rows(october_ledger.rmyy, OCTOBER)}
    verdict = {key: rows[c.case_number].on_time for key, c in october_ledger.cases.items()}

    assert {k for k, v in verdict.items() if v is True} == {"A1", "A2", "A4", "A6", "A14", "A15"}
    assert {k for k, v in verdict.items() if v is False} == {"A3", "A5", "A7", "A8", "A13", "A16"}
    assert verdict["A9"] is None and verdict["A10"] is None  # paused; deadline ahead
    assert verdict["D1"] is None and verdict["A11"] is None and verdict["M1"] is None


def test_overdue_in_sql_is_the_deadlines_rule(october_ledger):
    now = datetime.now(UTC)
    cases = list(db.session.scalars(select(Complaint).where(Complaint.institution_id == october_ledger.rmyy.id)))
    by_rule = {c.id for c in cases if deadlines.is_overdue(c, now)}
    by_sql = set(db.session.scalars(select(Complaint.id).where(Complaint.institution_id == october_ledger.rmyy.id,
                                                               deadlines.overdue_sql(now))))

    assert by_sql == by_rule == {october_ledger.cases[k].id for k in ("A8", "A13", "A16")}


def test_rectification_and_satisfaction_columns_summarise_the_case(october_ledger):
    rows = {r.case_number: r for r in ledger.iter_rows(october_ledger.rmyy, OCTOBER)}
    cases = october_ledger.cases

    assert rows[cases["A1"].case_number].rectification == "verified"
    assert rows[cases["A3"].case_number].rectification == "open"  # one verified, one still open
    assert rows[cases["A2"].case_number].rectification is None
    assert rows[cases["A4"].case_number].satisfaction == "unsatisfied"  # from its feedback row


@pytest.fixture
def handled(october_ledger):
    """The October ledger with replies sent (and one still a draft), a settlement note, a second co-handler."""
    officer = demo_user("rmyy-officer")
    cases = october_ledger.cases

    def reply(key: str, number: int, body: str, status: str = "sent") -> None:
        db.session.add(Reply(complaint_id=cases[key].id, number=number, body=body, status=status,
                             drafted_by_id=officer.id, sent_at=cases[key].replied_at if status == "sent" else None))

    reply("A1", 1, "经核实，挂号窗口工作人员解释不够耐心，已批评教育。")
    reply("A1", 2, "经核实，已对当事人批评教育，并组织窗口服务培训。")
    reply("A1", 3, "尚未审核的草稿", status="draft")
    reply("A3", 1, "已组织医务科复盘，诊疗符合规范。")
    reply("A6", 1, "已协调药剂科调整取药流程。")
    cases["A11"].settlement_note = "现场解释收费项目，患者表示理解。"
    db.session.add(CaseDepartment(complaint_id=cases["A14"].id, department_id=department(october_ledger.rmyy,
                                                                                          "YWK").id, role="co"))
    db.session.add(CaseDepartment(complaint_id=cases["A14"].id, department_id=department(october_ledger.rmyy,
                                                                                          "GK").id, role="co",
                                  active=False))
    db.session.flush()
    return october_ledger


def test_subject_co_handlers_and_outcome_columns_say_what_happened(handled):
    rows = {r.case_number: r for r in ledger.iter_rows(handled.rmyy, OCTOBER)}
    row = {key: rows[c.case_number] for key, c in handled.cases.items()}

    assert row["A1"].subject == "挂号窗口态度生硬"
    assert row["A14"].co_departments == ["财务科", "医务科"]  # the inactive one left out, in the order added
    assert row["A1"].co_departments == []
    # The latest reply sent, not the draft.
    assert row["A1"].outcome == "已解决：经核实，已对当事人批评教育，并组织窗口服务培训。"
    assert row["A3"].outcome == "未解决：已组织医务科复盘，诊疗符合规范。"
    assert row["A6"].outcome == "已协调药剂科调整取药流程。"  # replied, not closed yet: no verdict
    assert row["A11"].outcome == "已解决：现场解释收费项目，患者表示理解。"
    assert row["A12"].outcome == "已解决"  # settled on the spot without a note
    assert row["D1"].outcome == "已向法院起诉。"  # the decline notice
    assert row["A4"].outcome == "已解决" and row["A8"].outcome == "" and row["R1"].outcome == ""


def test_the_new_columns_are_on_the_page_and_in_both_exports(client, handled):
    staff_login(client, "rmyy-officer")
    a1, a14 = handled.cases["A1"].case_number, handled.cases["A14"].case_number

    page = client.get(ledger_url(handled, date_from="2026-10-01", date_to="2026-10-31")).get_data(as_text=True)
    workbook = load_workbook(io.BytesIO(client.get(f"/i/{handled.rmyy.id}/complaints/ledger/export.xlsx").get_data()))
    csv_text = client.get(f"/i/{handled.rmyy.id}/complaints/ledger/export.csv").get_data(as_text=True)

    assert ">协办科室</th>" in page and ">事由</th>" in page and ">处理结果</th>" in page
    assert "财务科、医务科" in page and "已解决：经核实，已对当事人批评教育" in page
    for rows in ([list(r) for r in workbook.active.iter_rows(values_only=True)],
                 list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))):
        table = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
        assert table[a14]["协办科室"] == "财务科、医务科" and table[a14]["事由"] == "挂号窗口态度生硬"
        assert table[a1]["处理结果"] == "已解决：经核实，已对当事人批评教育，并组织窗口服务培训。"
        assert not table[a1]["协办科室"]


# Pages and exports -----------------------------------------------------------------------

def ledger_url(data: Ledger, **args: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/i/{data.rmyy.id}/complaints/ledger" + (f"?{query}" if query else "")


def test_ledger_page_shows_fixed_columns_and_no_complainant(client, october_ledger):
    staff_login(client, "rmyy-officer")

    page = client.get(ledger_url(october_ledger, date_from="2026-10-01", date_to="2026-10-31"))

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for column in COLUMNS:
        assert f">{column}</th>" in html
    assert october_ledger.cases["A1"].case_number in html
    assert "张三丰" not in html and "欧阳测试" not in html and "张*" not in html
    assert PHONE not in html and "5678" not in html
    assert "投诉台账" in html and "投诉统计" in html  # the navigation entries


def test_ledger_page_rejects_bad_filters_with_a_chinese_message(client, october_ledger):
    staff_login(client, "rmyy-officer")

    page = client.get(ledger_url(october_ledger, date_from="2026-13-01", timeliness="soon"))

    assert page.status_code == 400
    assert "日期格式为 YYYY-MM-DD" in page.get_data(as_text=True)


@pytest.mark.parametrize("username, status", [("rmyy-leader", 200), ("rmyy-admin", 200), ("rmyy-handler", 403),
                                              ("zyy-officer", 404)])
def test_ledger_is_for_those_who_may_see_complaint_statistics(client, october_ledger, username, status):
    staff_login(client, username)

    assert client.get(ledger_url(october_ledger)).status_code == status
    assert client.get(f"/i/{october_ledger.rmyy.id}/complaints/ledger/export.csv").status_code == status


def test_xlsx_export_opens_with_openpyxl_with_real_dates_and_no_personal_data(client, october_ledger):
    staff_login(client, "rmyy-officer")

    response = client.get(f"/i/{october_ledger.rmyy.id}/complaints/ledger/export.xlsx"
                          "?date_from=2026-10-01&date_to=2026-10-31")

    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=\"complaint-ledger-")
    assert "投诉台账-示范一院-2026-10-01至2026-10-31.xlsx" in unquote(disposition.split("filename*=UTF-8''")[1])
    workbook = load_workbook(io.BytesIO(response.get_data()), read_only=True)
    rows = list(workbook.active.iter_rows(values_only=True))
    assert list(rows[0]) == COLUMNS
    assert len(rows) == 1 + HAND["rows"]
    a15 = next(r for r in rows if r[0] == october_ledger.cases["A15"].case_number)
    assert a15[RECEIVED] == datetime(2026, 10, 8, 10, 0)       # received, Beijing time, a real date
    assert a15[DUE] == datetime(2026, 10, 12)                  # due day
    assert a15[ON_TIME] == "是"
    text = repr(rows)
    assert "张三丰" not in text and "欧阳测试" not in text and "13912345678" not in text and "13800000000" not in text


def test_csv_export_has_a_bom_and_the_same_rows(client, october_ledger):
    staff_login(client, "rmyy-officer")

    response = client.get(f"/i/{october_ledger.rmyy.id}/complaints/ledger/export.csv"
                          "?date_from=2026-10-01&date_to=2026-10-31&timeliness=overdue")

    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == COLUMNS
    assert {r[0] for r in rows[1:]} == keys(october_ledger, "A3", "A5", "A7", "A8", "A13", "A16")
    assert all(r[ON_TIME] == "否" for r in rows[1:])
    assert "张三丰" not in body and PHONE not in body


def test_export_with_bad_filters_is_a_400(client, october_ledger):
    staff_login(client, "rmyy-officer")

    response = client.get(f"/i/{october_ledger.rmyy.id}/complaints/ledger/export.xlsx?category_id=abc")

    assert response.status_code == 400
    assert "筛选条件有误" in response.get_data(as_text=True)


def test_on_time_rate_equals_a_hand_count_of_the_exported_ledger(client, october_ledger):
    from complaints import stats

    staff_login(client, "rmyy-officer")
    response = client.get(f"/i/{october_ledger.rmyy.id}/complaints/ledger/export.xlsx"
                          "?date_from=2026-10-01&date_to=2026-10-31")
    rows = list(load_workbook(io.BytesIO(response.get_data()), read_only=True).active.iter_rows(values_only=True))
    yes = sum(1 for r in rows[1:] if r[ON_TIME] == "是")
    no = sum(1 for r in rows[1:] if r[ON_TIME] == "否")

    rate = stats.summaries([october_ledger.rmyy.id], stats.parse_period("2026-10"))[october_ledger.rmyy.id].on_time
    assert (yes, yes + no) == (rate.numerator, rate.denominator) == HAND["on_time"]


# Streaming -----------------------------------------------------------------------------

@pytest.fixture
def three_thousand_cases(rmyy, categories):
    """3,000 bare cases of rmyy, inserted in bulk."""
    officer = demo_user("rmyy-officer")
    start = datetime(2026, 1, 5, 2, tzinfo=UTC)
    rows = [{"institution_id": rmyy.id, "case_number": f"BULK-{i:05d}", "channel": "phone",
             "received_at": start + timedelta(minutes=97 * i), "first_contact_id": officer.id,
             "category_id": categories["other"].id, "subject": "测试", "description": "测试",
             "complainant_name": "王五", "complainant_phone": "13700000000", "status": "closed",
             "due_at": start + timedelta(minutes=97 * i, days=7),
             "replied_at": start + timedelta(minutes=97 * i, days=3),
             "closed_at": start + timedelta(minutes=97 * i, days=4), "deadline_trace": {}, "version": 1}
            for i in range(3000)]
    write_rows(Complaint, rows)
    db.session.flush()
    return rmyy


def test_export_reads_the_ledger_in_keyset_batches(app, three_thousand_cases):
    fetched: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM complaint" in statement \
                and "case_number" in statement:
            fetched.append(cursor.rowcount)

    engine = db.engines[None]
    target = engine.engine if hasattr(engine, "engine") else engine
    event.listen(target, "after_cursor_execute", count)
    try:
        handle, written = ledger.write_xlsx(ledger.iter_rows(three_thousand_cases, ledger.LedgerFilter(), batch=1000))
    finally:
        event.remove(target, "after_cursor_execute", count)

    assert written == 3000
    assert fetched == [1000, 1000, 1000, 0] or fetched == [1000, 1000, 1000]
    assert sum(1 for _ in load_workbook(handle, read_only=True).active.iter_rows()) == 3001


def test_export_keeps_no_orm_objects_in_the_session(three_thousand_cases):
    before = len(db.session.identity_map)

    for _row in ledger.iter_rows(three_thousand_cases, ledger.LedgerFilter(), batch=500):
        pass

    assert len(db.session.identity_map) == before


def test_keyset_batches_keep_cases_received_at_the_same_instant(rmyy, categories):
    same = datetime(2026, 3, 3, 3, tzinfo=UTC)
    for i in range(7):
        add_case(rmyy, received=same, case_number=f"SAME-{i}")

    read = [r.case_number for r in ledger.iter_rows(rmyy, ledger.LedgerFilter(), batch=3)]

    assert sorted(read) == [f"SAME-{i}" for i in range(7)]


def test_demo_generator_fills_every_status_and_channel(rmyy, categories, calendar_2026):
    from complaints.models import Status

    demo.seed_cases(120, institutions=[rmyy], days=90)

    statuses = set(db.session.scalars(select(Complaint.status).where(Complaint.institution_id == rmyy.id)))
    channels = set(db.session.scalars(select(Complaint.channel).where(Complaint.institution_id == rmyy.id)))
    assert statuses == {s.value for s in Status}
    assert len(channels) == 7
