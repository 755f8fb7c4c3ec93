"""The working-day calendar: seeding from chinesecalendar, the admin pages, the missing-year banner.

Platform admins ('platform') edit; institution admins and complaint officers
may look; handlers and leaders may not. The banner warns admins and officers
on every staff page while this year, or next year from November, has no
official calendar.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from sqlalchemy import event, func, select

from complaints import calendar_data, deadlines, views_calendar, workdays
from complaints.models import CalendarDay, CalendarYear, CaseEvent, Channel, Complaint, DayKind, Status
from core.audit import AuditEntry
from core.extensions import db
from tests.complaints.conftest import staff_login
from tests.factories import demo_user as staff_user

BANNER_2027 = "2027 年的法定节假日安排尚未录入，相关期限按周一至周五临时计算，请尽快录入。"
BEIJING = ZoneInfo("Asia/Shanghai")


def text(response) -> str:
    return response.get_data(as_text=True)


def day(iso: str) -> date:
    return date.fromisoformat(iso)


def year_row(year: int) -> CalendarYear | None:
    db.session.expire_all()
    return db.session.get(CalendarYear, year)


@pytest.fixture
def today(monkeypatch):
    """Pin the banner's idea of today (default 2026-11-26) and start with an empty banner cache."""
    state = {"today": day("2026-11-26")}
    monkeypatch.setattr(views_calendar, "local_today", lambda: state["today"])
    workdays._warning_cache.clear()
    yield state
    workdays._warning_cache.clear()


# Seeding ---------------------------------------------------------------------------

def test_seeding_enters_the_2026_notice_with_chinese_names(ctx):
    assert calendar_data.seed_from_chinesecalendar([2026], actor="test") > 0
    row = year_row(2026)
    assert (row.version, row.updated_by_id) == (1, None) and row.source.startswith("chinesecalendar")
    days = {d.day: d for d in db.session.scalars(select(CalendarDay).where(CalendarDay.day.between(
        day("2026-01-01"), day("2026-12-31"))))}
    assert [d for d in sorted(days) if days[d].kind == DayKind.MAKEUP_WORKDAY.value] == [
        day("2026-01-04"), day("2026-02-14"), day("2026-02-28"), day("2026-05-09"), day("2026-09-20"),
        day("2026-10-10")]
    assert days[day("2026-10-10")].name == "国庆节调休上班"
    assert {days[day(f"2026-10-0{i}")].name for i in range(1, 8)} == {"国庆节"}
    assert days[day("2026-02-17")].name == "春节" and days[day("2026-06-19")].name == "端午节"
    assert day("2026-10-08") not in days
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "calendar.seed", AuditEntry.target_id == "2026")) == 1


def test_seeding_again_adds_nothing(ctx):
    calendar_data.seed_from_chinesecalendar([2025, 2026], actor="test")
    audits = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert calendar_data.seed_from_chinesecalendar([2025, 2026], actor="test") == 0
    assert calendar_data.seed_from_chinesecalendar(actor="test") > 0  # the other years, once
    assert calendar_data.seed_from_chinesecalendar(actor="test") == 0
    assert year_row(2026).version == 1
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) > audits
    assert year_row(2004) is not None and year_row(2027) is None


def test_seeding_syncs_a_package_year_that_drifted_and_bumps_its_version(ctx):
    calendar_data.seed_from_chinesecalendar([2026], actor="test")
    db.session.delete(db.session.get(CalendarDay, day("2026-10-10")))  # as if an older package lacked it
    db.session.flush()
    assert calendar_data.seed_from_chinesecalendar([2026], actor="test") == 1
    assert db.session.get(CalendarDay, day("2026-10-10")) is not None
    assert year_row(2026).version == 2


def test_seeding_never_overwrites_an_admins_edit(ctx):
    admin = staff_user("platform")
    calendar_data.seed_from_chinesecalendar([2026], actor="test")
    calendar_data.set_calendar_day(day("2026-10-10"), DayKind.HOLIDAY, "本地调整", actor=admin)
    assert year_row(2026).version == 2 and year_row(2026).updated_by_id == admin.id
    assert calendar_data.seed_from_chinesecalendar([2026], actor="test") == 0
    assert db.session.get(CalendarDay, day("2026-10-10")).name == "本地调整"
    assert year_row(2026).version == 2


def test_seeding_leaves_an_admins_draft_alone(ctx):
    calendar_data.set_calendar_day(day("2026-10-10"), DayKind.HOLIDAY, "草稿", actor="test")
    assert calendar_data.seed_from_chinesecalendar([2026], actor="test") == 0
    assert year_row(2026) is None


def test_years_the_package_does_not_cover_are_ignored(ctx):
    assert calendar_data.seed_from_chinesecalendar([2027, 1999], actor="test") == 0
    assert calendar_data.package_years()[0] == 2004 and 2026 in calendar_data.package_years()


def test_seed_calendar_command_is_idempotent(app, ctx):
    runner = app.test_cli_runner()
    first: Result = runner.invoke(args=["seed-calendar", "--year", "2026", "--year", "2027"])
    assert first.exit_code == 0, first.output
    assert "does not cover 2027" in first.output and "day(s) added" in first.output
    second = runner.invoke(args=["seed-calendar", "--year", "2026"])
    assert "Calendar: 0 day(s)" in second.output
    assert year_row(2026).version == 1


def test_the_complaint_demo_seeder_is_registered(app):
    from complaints import demo

    assert demo.seed_demo in app.extensions["demo_seeders"]


# Edits ------------------------------------------------------------------------------

def test_a_make_up_workday_must_be_a_weekend_day(ctx):
    with pytest.raises(calendar_data.CalendarError, match="星期六或星期日"):
        calendar_data.set_calendar_day(day("2027-01-06"), DayKind.MAKEUP_WORKDAY, "调休", actor="test")


def test_a_day_name_is_cleaned_and_at_most_40_characters(ctx):
    with pytest.raises(calendar_data.CalendarError, match="名称不能超过 40 字") as refused:
        calendar_data.set_calendar_day(day("2027-01-06"), DayKind.HOLIDAY, "假" * 41, actor="test")
    assert refused.value.field == "name"
    row = calendar_data.set_calendar_day(day("2027-01-06"), DayKind.HOLIDAY, "  " + "假" * 40 + " ", actor="test")
    assert row.name == "假" * 40


def test_marking_a_year_official_needs_its_holidays_first(ctx):
    with pytest.raises(calendar_data.CalendarError, match="请先录入 2027 年的法定节假日"):
        calendar_data.mark_year_official(2027, "国办发明电〔2026〕9号", actor="test")


def test_prefill_enters_the_statutory_holidays_as_a_draft(ctx):
    added = calendar_data.prefill_statutory_holidays(2027, actor="test")
    assert added == len(workdays.statutory_holidays(2027)) == 13
    assert year_row(2027) is None
    assert workdays.is_working_day(day("2027-01-01")) == (False, True)


# Pages ------------------------------------------------------------------------------

@pytest.fixture
def officer_case(calendar_2026, rmyy):
    """An open rmyy case received on 2026-09-30 17:00, due 2026-10-13."""
    case = Complaint(institution_id=rmyy.id, case_number="CAL-0001", channel=Channel.WALK_IN,
                     received_at=datetime(2026, 9, 30, 17, 0, tzinfo=BEIJING), subject="收费窗口态度差",
                     description="窗口人员不耐烦。", status=Status.IN_HANDLING.value, deadline_rule="standard",
                     working_days=5)
    db.session.add(case)
    db.session.flush()
    deadlines.apply_deadline(case, deadlines.deadline_for(case))
    db.session.flush()
    assert case.due_date == day("2026-10-13")
    return case


@pytest.mark.parametrize("username", ["platform", "rmyy-admin", "rmyy-officer"])
def test_admins_and_officers_may_view_the_calendar(client, calendar_2026, today, username):
    staff_login(client, username)
    assert client.get("/admin/complaints/calendar").status_code == 200
    page = client.get("/admin/complaints/calendar/2026")
    assert page.status_code == 200
    assert "国庆节" in text(page) and "国庆节调休上班" in text(page)


@pytest.mark.parametrize("username", ["rmyy-handler", "rmyy-leader"])
def test_handlers_and_leaders_may_not(client, calendar_2026, username):
    staff_login(client, username)
    assert client.get("/admin/complaints/calendar").status_code == 403
    assert client.get("/admin/complaints/calendar/2026").status_code == 403


def test_only_platform_admins_may_edit(client, calendar_2026, today):
    staff_login(client, "rmyy-admin")
    response = client.post("/admin/complaints/calendar/2026/days",
                           data={"day": "2026-10-09", "kind": "holiday", "name": "测试"})
    assert response.status_code == 403
    assert client.post("/admin/complaints/calendar/2027/official", data={"notice": "x"}).status_code == 403
    assert db.session.get(CalendarDay, day("2026-10-09")) is None
    page = text(client.get("/admin/complaints/calendar/2026"))
    assert "添加或修改一天" not in page and "删除" not in page


def test_the_nav_entry_is_for_platform_admins(client, new_client, calendar_2026, today):
    staff_login(client, "platform")
    assert ">工作日历</a>" in text(client.get("/admin/complaints/calendar"))
    other = new_client()
    staff_login(other, "rmyy-officer")
    assert ">工作日历</a>" not in text(other.get(f"/i/{staff_user('rmyy-officer').institution_id}/"))


def test_year_list_shows_official_and_missing_years(client, calendar_2026, today):
    staff_login(client, "platform")
    page = text(client.get("/admin/complaints/calendar"))
    assert "chinesecalendar" in page
    row_2027 = page[page.index('calendar/2027">2027'):][:600]
    assert "未录入（临时计算）" in row_2027 and "需尽快录入" in row_2027


def test_year_grid_marks_holidays_and_make_up_workdays(client, calendar_2026, today):
    staff_login(client, "platform")
    response = client.get("/admin/complaints/calendar/2026")
    page = text(response)
    nonce = page.split('<style nonce="', 1)[1].split('"', 1)[0]  # the grid's colours pass the CSP
    assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"] and ".cal-holiday" in page
    assert 'title="2026-10-10 调休上班 国庆节调休上班"' in page
    assert 'title="2026-10-01 节假日 国庆节"' in page
    assert 'title="2026-10-08 工作日"' in page
    assert 'title="2026-10-17 周末"' in page
    unannounced = text(client.get("/admin/complaints/calendar/2027"))
    assert 'title="2027-01-01 节假日 元旦"' in unannounced and "预填法定节假日" in unannounced


def test_admin_adds_a_day_which_bumps_the_version_and_moves_open_deadlines(client, officer_case, today):
    admin = staff_login(client, "platform")
    response = client.post("/admin/complaints/calendar/2026/days",
                           data={"day": "2026-10-09", "kind": "holiday", "name": "临时放假"})
    assert response.status_code == 302
    assert db.session.get(CalendarDay, day("2026-10-09")).name == "临时放假"
    assert year_row(2026).version == 2
    db.session.expire_all()
    case = db.session.get(Complaint, officer_case.id)
    assert case.due_date == day("2026-10-14")
    event_ = db.session.scalar(select(CaseEvent).where(CaseEvent.complaint_id == case.id,
                                                       CaseEvent.action == "deadline_recomputed"))
    assert event_.data["from"] == "2026-10-13" and event_.data["to"] == "2026-10-14"
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.day_set"))
    assert audit.actor_id == admin.id and audit.data["year_version"] == 2
    assert "1 件的期限发生变化" in text(client.get("/admin/complaints/calendar/2026"))


def test_admin_renames_and_removes_a_day(client, calendar_2026, today):
    staff_login(client, "platform")
    client.post("/admin/complaints/calendar/2026/days", data={"day": "2026-10-10", "kind": "workday", "name": "调休"})
    assert db.session.get(CalendarDay, day("2026-10-10")).name == "调休"
    response = client.post("/admin/complaints/calendar/2026/days/2026-10-10/delete")
    assert response.status_code == 302
    assert db.session.get(CalendarDay, day("2026-10-10")) is None
    assert year_row(2026).version == 3
    assert workdays.is_working_day(day("2026-10-10")) == (False, False)


@pytest.mark.parametrize("form, message", [
    ({"day": "2026-02-30", "kind": "holiday", "name": "x"}, "日期格式为 YYYY-MM-DD。"),
    ({"day": "明天", "kind": "holiday", "name": "x"}, "日期格式为 YYYY-MM-DD。"),
    ({"day": "", "kind": "holiday", "name": "x"}, "请填写日期。"),
    ({"day": "2027-01-01", "kind": "holiday", "name": "x"}, "日期不在 2026 年内。"),
    ({"day": "2026-10-09", "kind": "workday", "name": "x"}, "调休上班日应为星期六或星期日"),
    ({"day": "2026-10-09", "kind": "nonsense", "name": "x"}, "Not a valid choice"),
])
def test_bad_days_get_a_400_with_a_message(client, calendar_2026, today, form, message):
    staff_login(client, "platform")
    response = client.post("/admin/complaints/calendar/2026/days", data=form)
    assert response.status_code == 400
    if message != "Not a valid choice":
        assert message in text(response)
    assert year_row(2026).version == 1


@pytest.mark.parametrize("path, message", [
    ("/admin/complaints/calendar/1800", "年份须在 2000 年至 2100 年之间。"),
    ("/admin/complaints/calendar/2026?edit=2026-13-01", "日期格式为 YYYY-MM-DD。"),
    ("/admin/complaints/calendar?received=2026-02-30&days=5", "日期格式为 YYYY-MM-DD。"),
    ("/admin/complaints/calendar?received=2026-09-30&days=500", "工作日数须在 0 至 60 之间。"),
])
def test_bad_urls_get_a_400_with_a_message(client, calendar_2026, today, path, message):
    staff_login(client, "platform")
    response = client.get(path)
    assert response.status_code == 400
    assert message in text(response)


def test_deleting_a_bad_or_unknown_date_is_a_400(client, calendar_2026, today):
    staff_login(client, "platform")
    assert "日期格式为 YYYY-MM-DD。" in text(client.post("/admin/complaints/calendar/2026/days/2026-02-30/delete"))
    response = client.post("/admin/complaints/calendar/2026/days/2026-10-08/delete")
    assert response.status_code == 400 and "不在节假日安排中" in text(response)
    assert client.post("/admin/complaints/calendar/2026/days/2027-01-01/delete").status_code == 400


def test_marking_2027_official_from_the_page_recomputes_provisional_deadlines(client, calendar_2026, rmyy, today):
    case = Complaint(institution_id=rmyy.id, case_number="CAL-2027", channel=Channel.PHONE,
                     received_at=datetime(2026, 12, 30, 11, 0, tzinfo=BEIJING), subject="s", description="d",
                     status=Status.ACCEPTED.value, deadline_rule="standard", working_days=5)
    db.session.add(case)
    db.session.flush()
    deadlines.apply_deadline(case, deadlines.deadline_for(case))
    assert case.deadline_provisional
    staff_login(client, "platform")
    refused = client.post("/admin/complaints/calendar/2027/official", data={"notice": "国办发明电〔2026〕9号"})
    assert refused.status_code == 400 and "请先录入 2027 年的法定节假日" in text(refused)
    assert client.post("/admin/complaints/calendar/2027/prefill").status_code == 302
    response = client.post("/admin/complaints/calendar/2027/official", data={"notice": "国办发明电〔2026〕9号"})
    assert response.status_code == 302
    row = year_row(2027)
    assert row.source == "国务院办公厅通知 国办发明电〔2026〕9号" and row.updated_by_id == staff_user("platform").id
    case = db.session.get(Complaint, case.id)
    assert (case.due_date, case.deadline_provisional) == (day("2027-01-07"), False)
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "calendar.year_official")) is not None
    assert client.post("/admin/complaints/calendar/2027/official", data={"notice": ""}).status_code == 400


def test_the_deadline_check_shows_the_trace(client, calendar_2026, today):
    staff_login(client, "rmyy-officer")
    page = text(client.get("/admin/complaints/calendar?received=2026-09-30&days=5"))
    assert "<strong>2026-10-13</strong>" in page
    assert "收到投诉，当日不计入" in page and "国庆节调休上班" in page
    provisional = text(client.get("/admin/complaints/calendar?received=2026-12-30&days=5"))
    assert "<strong>2027-01-07</strong>" in provisional and "临时" in provisional


# The banner -----------------------------------------------------------------------------

@pytest.mark.parametrize("username", ["platform", "rmyy-admin", "rmyy-officer"])
def test_banner_warns_admins_and_officers_on_staff_pages(client, calendar_2026, today, username):
    user = staff_login(client, username)
    page = text(client.get(f"/i/{user.institution_id}/" if user.institution_id else "/admin/complaints/calendar"))
    assert BANNER_2027 in page
    assert 'href="/admin/complaints/calendar/2027"' in page


def test_banner_is_not_shown_to_handlers(client, calendar_2026, today):
    user = staff_login(client, "rmyy-handler")
    assert BANNER_2027 not in text(client.get(f"/i/{user.institution_id}/survey/responses"))


def test_banner_waits_for_november_for_next_year(client, calendar_2026, today):
    today["today"] = day("2026-10-31")
    user = staff_login(client, "rmyy-officer")
    assert "法定节假日安排尚未录入" not in text(client.get(f"/i/{user.institution_id}/"))


def test_banner_always_warns_about_the_current_year(client, calendar_2026, today):
    today["today"] = day("2027-03-01")
    user = staff_login(client, "rmyy-officer")
    assert BANNER_2027 in text(client.get(f"/i/{user.institution_id}/"))


def test_banner_goes_away_once_the_year_is_entered(client, calendar_2026, today):
    staff_login(client, "platform")
    assert BANNER_2027 in text(client.get("/admin/complaints/calendar"))
    client.post("/admin/complaints/calendar/2027/prefill")
    assert BANNER_2027 in text(client.get("/admin/complaints/calendar"))  # a draft is not enough
    client.post("/admin/complaints/calendar/2027/official", data={"notice": "国办发明电〔2026〕9号"})
    assert BANNER_2027 not in text(client.get("/admin/complaints/calendar"))


def test_banner_check_is_cached_between_pages(client, calendar_2026, today):
    user = staff_login(client, "rmyy-officer")
    # A page without deadlines of its own (the home page's to-do list counts overdue cases on the calendar).
    page_path = f"/i/{user.institution_id}/departments"
    client.get(page_path)
    statements = []
    engine = db.session.get_bind()

    def count(conn, cursor, statement, *args):
        if "FROM work_calendar_year" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = text(client.get(page_path))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert BANNER_2027 in page and statements == []
