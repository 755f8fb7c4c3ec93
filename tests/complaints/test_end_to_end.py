"""Acceptance test of the complaints feature, end to end (issue 5, "Done when").

1. In real browsers: a patient at the registration window (W-GH-01, 财务科) rates it on a phone, files
   a 收费价格 complaint from the thank-you page and keeps the receipt; a routing rule sends 收费价格 to
   财务科; the officer accepts the case and assigns the proposed department; the department's handler
   finds it in the department queue and drafts the reply; another officer-capable user (rmyy-admin)
   approves it; the officer sends it and closes the case; the patient looks the case up with the number
   and code, reads the approved reply and answers the satisfaction link with 满意. The database is
   checked after every step; screenshots go to the ``shots`` folder (TINGJIAN_SHOTS keeps them).

2. Through the services, no browser: the deadlines the product computes when a case is accepted and
   routed (checks C1, C2, C3, C3b, C4, C5 and C6 of ../shared/reference/complaints.md) across the 2026
   National Day holiday with its make-up workday, and in the provisional 2027 fallback until the
   2027 calendar is confirmed through the calendar service the admin page uses.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from complaints import calendar_data, deadlines, lookup, routing, tasks, triage, workdays
from complaints.models import CaseEvent, Complaint, Feedback, Reply, ReplyStatus, RoutingRule, Status
from core.extensions import db
from organisation.demo import DEMO_PASSWORD
from tests.complaints.conftest import department, staff_login, touchpoint
from tests.factories import demo_user

BEIJING = ZoneInfo("Asia/Shanghai")
BANNER_2027 = "2027 年的法定节假日安排尚未录入，相关期限按周一至周五临时计算，请尽快录入。"
PHONE_NUMBER = "13912345678"
DESCRIPTION = ("今天上午在门诊挂号收费 1 号窗口挂心内科普通号，窗口收了两次挂号费（各 20 元），"
               "我当场指出，工作人员说系统没问题、让我自己去找财务。")
WISH = "退还多收的 20 元，并说明原因。"
REPLY = ("您好！您反映的门诊挂号收费 1 号窗口重复收取挂号费的问题已收悉。经财务科核对当日收费明细，"
         "确有重复收取普通门诊挂号费 20 元的情况，已为您办理退费，款项将在 3 个工作日内原路退回。"
         "我们已对当班收费人员进行批评教育，并在窗口张贴退费指引。感谢您的监督。")


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def day(text: str) -> date:
    return date.fromisoformat(text)


def fresh(model, row_id: int):
    """The row as the database has it now. Commit (never roll back) first: the live server works on
    savepoints of this test's connection, and a rollback here would undo what its requests committed."""
    db.session.commit()
    return db.session.get(model, row_id)


def actions(case: Complaint) -> list[str]:
    return list(db.session.scalars(select(CaseEvent.action).where(CaseEvent.complaint_id == case.id)
                                   .order_by(CaseEvent.at, CaseEvent.id)))


# 1. In the browser ------------------------------------------------------------------------------------

def _quiet(context) -> None:
    # Staff pages have no icon link: answer Chromium's /favicon.ico here, so that no request reaches the
    # live server (which shares this test's database connection) while the test reads the database.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))


def log_in(page, base: str, username: str) -> None:
    _quiet(page.context)
    page.goto(base + "/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="登录").click()
    assert "/login" not in page.url, page.content()


def submit(page, locator) -> None:
    """Click a button (or link) and wait until the next page has loaded."""
    with page.expect_navigation():
        locator.click()


def tap(page, locator) -> None:
    with page.expect_navigation():
        locator.tap()


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


@pytest.mark.browser
def test_a_phone_complaint_reaches_the_department_is_answered_closed_and_rated(
        app, live_server, browser, phone, desktop, shots, rmyy, categories, calendar_2026, outbox):
    from survey import qr, versioning

    versioning.install_builtin_templates(actor="test")
    window = touchpoint(rmyy, "W-GH-01")
    cwk = department(rmyy, "CWK")
    officer, admin, handler = (demo_user(u) for u in ("rmyy-officer", "rmyy-admin", "rmyy-handler"))
    assert cwk.id in handler.department_ids
    window_url = f"{live_server}/q/{qr.path_token(qr.ensure_code(window, actor='test'))}"
    institution_id, charges_id = rmyy.id, categories["charges"].id
    db.session.commit()
    base = live_server
    case_page = None

    # The officer adds a routing rule on the routing page: 收费价格 → 财务科.
    log_in(desktop, base, "rmyy-officer")
    desktop.goto(f"{base}/i/{institution_id}/complaints/routing/new")
    desktop.get_by_label("优先级").fill("10")
    desktop.get_by_label("投诉类别").select_option(label="收费价格")
    desktop.get_by_label("建议分派至").select_option(label="财务科")
    submit(desktop, desktop.get_by_role("button", name="保存"))
    assert "分派规则已保存。" in desktop.content()
    desktop.screenshot(path=str(shots / "01-officer-routing-rule.png"), full_page=True)
    db.session.commit()
    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.institution_id == institution_id))
    assert (rule.category_id, rule.target_department_id, rule.touchpoint_id, rule.active) == (
        charges_id, cwk.id, None, True)

    # The patient rates the window on the phone, then files a complaint from the thank-you page.
    phone.goto(window_url)
    phone.wait_for_timeout(2100)  # a person takes longer than the minimum fill time
    phone.get_by_text("一般", exact=True).tap()
    tap(phone, phone.get_by_role("button", name="提交评价"))
    assert "评价已收到" in phone.content()
    tap(phone, phone.get_by_role("link", name="我要投诉"))
    assert phone.url.split("?")[0] == f"{base}/c/{institution_id}/new"
    assert "response=" in phone.url
    no_sideways_scroll(phone)
    phone.get_by_text("收费价格", exact=True).tap()
    phone.get_by_label("请说说发生了什么").fill(DESCRIPTION)
    phone.get_by_label("您希望我们怎么处理？").fill(WISH)
    phone.get_by_label("您的称呼").fill("王女士")
    phone.get_by_label("联系电话（建议填写，便于答复您）").fill(PHONE_NUMBER)
    phone.screenshot(path=str(shots / "02-phone-complaint-form.png"), full_page=True)
    tap(phone, phone.get_by_role("button", name="提交投诉"))
    assert phone.get_by_text("投诉已提交").first.is_visible()
    no_sideways_scroll(phone)
    number = phone.inner_text("dd.code:not(.pin)").strip()
    code = phone.inner_text("dd.code.pin").strip()
    assert re.fullmatch(r"TS\d{4}-\d{5}", number) and re.fullmatch(r"\d{6}", code)
    phone.screenshot(path=str(shots / "03-phone-receipt.png"), full_page=True)

    db.session.commit()
    case = db.session.scalar(select(Complaint).where(Complaint.institution_id == institution_id,
                                                     Complaint.case_number == number))
    assert case is not None
    case_id = case.id
    assert case.status == Status.REGISTERED and case.channel == "self_service"
    assert case.category_id == charges_id and case.touchpoint_id == window.id
    assert [d.code for d in case.concerned_departments] == ["CWK"]  # the window's department
    assert case.survey_response_id is not None
    assert (case.complainant_phone, case.complainant_name) == (PHONE_NUMBER, "王女士")
    assert case.first_contact_id is None and case.lead_department_id is None
    # The clock started at receipt: the receipt told the complainant the date a reply is due.
    assert case.due_date is not None and case.due_date.isoformat() in phone.inner_text("dl.kv")
    assert routing.propose(case).rule.id == rule.id

    # The officer finds the case in the queue, accepts it and assigns the proposed department.
    desktop.goto(f"{base}/i/{institution_id}/complaints/")
    triage_row = desktop.locator("section.triage tr", has_text=number)
    assert triage_row.count() == 1
    desktop.screenshot(path=str(shots / "04-officer-queue.png"), full_page=True)
    submit(desktop, triage_row.get_by_role("link"))
    case_page = desktop.url
    assert case_page.endswith(f"/i/{institution_id}/complaints/{case_id}")
    submit(desktop, desktop.locator("form[action$='/accept'] button[type=submit]"))
    assert "已受理。办理期限自接到投诉次日起计算，不因受理而改变。" in desktop.content()
    case = fresh(Complaint, case_id)
    expected_due = deadlines.compute_deadline(case.received_at, 5, rule="standard")
    assert case.status == Status.ACCEPTED and case.first_contact_id == officer.id
    assert (case.deadline_rule, case.working_days, case.due_date) == ("standard", 5, expected_due.due_date)
    assert case.deadline_provisional == expected_due.provisional

    assign = desktop.locator("form[action$='/assign']")
    assert "建议：财务科" in desktop.inner_text("#actions")
    assert f"分派规则 #{rule.id}" in desktop.inner_text("#actions")
    assert assign.locator("select[name='assign-lead']").input_value() == str(cwk.id)
    desktop.screenshot(path=str(shots / "05-officer-case-accepted.png"), full_page=True)
    outbox.clear()
    submit(desktop, assign.locator("button[type=submit]"))
    assert "已分派。" in desktop.content()
    case = fresh(Complaint, case_id)
    assert case.status == Status.IN_HANDLING and case.lead_department_id == cwk.id
    assert case.due_date == expected_due.due_date and case.deadline_rule == "standard"
    told = [m for m in outbox if m.kind == "complaint_assigned"]
    assert len(told) == 1 and "rmyy-handler" in told[0].recipients and number in told[0].subject

    # The handler, in a browser of their own, finds it in the department queue and drafts the reply.
    handler_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        staff = handler_context.new_page()
        log_in(staff, base, "rmyy-handler")
        staff.goto(f"{base}/i/{institution_id}/complaints/department")
        row = staff.locator("table.queue tr", has_text=number)
        assert row.count() == 1 and "本科室主办" in row.inner_text() and "财务科" in row.inner_text()
        staff.screenshot(path=str(shots / "06-handler-department-queue.png"), full_page=True)
        submit(staff, row.get_by_role("link"))
        page_text = staff.inner_text("body")
        assert PHONE_NUMBER not in page_text and "139****5678" in page_text  # contact masked for handlers
        submit(staff, staff.get_by_role("link", name="起草答复"))
        submit(staff, staff.get_by_role("link", name="收费问题（含退费）"))
        assert "财务科" in staff.input_value("textarea[name=body]")  # the template is a starting point
        staff.fill("textarea[name=body]", REPLY)
        staff.screenshot(path=str(shots / "07-handler-draft.png"), full_page=True)
        submit(staff, staff.get_by_role("button", name="提交审核"))
        assert "答复已提交审核。" in staff.content()
        assert staff.get_by_role("link", name="审核答复").count() == 0  # never one's own review
    finally:
        handler_context.close()
    case = fresh(Complaint, case_id)
    [reply] = db.session.scalars(select(Reply).where(Reply.complaint_id == case_id)).all()
    assert case.status == Status.REPLY_DRAFTED
    assert (reply.number, reply.status, reply.drafted_by_id, reply.body) == (1, ReplyStatus.SUBMITTED,
                                                                             handler.id, REPLY)

    # The patient checks progress: the draft is not shown before someone else approves it (C10).
    phone.goto(f"{base}/c/lookup?i={institution_id}")
    phone.fill("input[name=case_number]", number)
    phone.fill("input[name=code]", code)
    tap(phone, phone.get_by_role("button", name="查询"))
    assert "正在准备答复" in phone.content()
    assert "医院答复" not in phone.content() and "重复收取" not in phone.content()
    phone.screenshot(path=str(shots / "08-phone-lookup-while-drafted.png"), full_page=True)

    # rmyy-admin (an officer-capable user other than the drafter) approves the reply.
    admin_context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    try:
        reviewer = admin_context.new_page()
        log_in(reviewer, base, "rmyy-admin")
        reviewer.goto(case_page)
        submit(reviewer, reviewer.get_by_role("link", name="审核答复"))
        assert REPLY in reviewer.content()
        reviewer.screenshot(path=str(shots / "09-admin-review.png"), full_page=True)
        submit(reviewer, reviewer.get_by_role("button", name="审核通过"))
        assert "答复已审核通过，可以发送给投诉人。" in reviewer.content()
    finally:
        admin_context.close()
    case = fresh(Complaint, case_id)
    reply = db.session.get(Reply, reply.id)
    assert case.status == Status.REPLY_APPROVED and reply.status == ReplyStatus.APPROVED
    assert reply.reviewed_by_id == admin.id and reply.reviewed_by_id != reply.drafted_by_id
    assert case.replied_at is None

    # The officer sends it (by SMS: the patient left a mobile number) and closes the case.
    outbox.clear()
    desktop.goto(case_page)
    submit(desktop, desktop.get_by_role("link", name="发送答复"))
    assert desktop.locator("input[name=via][value=sms]").is_checked()
    desktop.screenshot(path=str(shots / "10-officer-send.png"), full_page=True)
    submit(desktop, desktop.get_by_role("button", name="发送答复"))
    assert "答复已发送并记录。" in desktop.content()
    case = fresh(Complaint, case_id)
    reply = db.session.get(Reply, reply.id)
    assert case.status == Status.REPLIED and case.replied_at is not None
    assert (reply.status, reply.sent_via, reply.sent_at) == (ReplyStatus.SENT, "sms", case.replied_at)
    [sms] = [m for m in outbox if m.kind == "complaint_reply"]
    assert sms.recipients == [PHONE_NUMBER] and REPLY in sms.body and number in sms.subject

    submit(desktop, desktop.get_by_role("link", name="办结", exact=True))
    desktop.get_by_label("已解决").check()
    desktop.get_by_label("办结说明").fill("已退费 20 元，投诉人已收到答复。")
    submit(desktop, desktop.get_by_role("button", name="办结"))
    assert "案件已办结。" in desktop.content()
    case = fresh(Complaint, case_id)
    assert case.status == Status.CLOSED and case.closed_at is not None and case.closed_at >= case.replied_at
    assert case.resolved is True and case.lead_department_id == cwk.id and case.first_contact_id == officer.id
    [fb] = db.session.scalars(select(Feedback).where(Feedback.complaint_id == case_id)).all()
    assert fb.answered_at is None and fb.link_sent_at is not None
    [link_sms] = [m for m in outbox if m.kind == "complaint_feedback"]
    assert link_sms.recipients == [PHONE_NUMBER]
    token = re.search(r"/c/feedback/([^\s/?#（]+)", link_sms.body).group(1)
    desktop.screenshot(path=str(shots / "11-officer-closed.png"), full_page=True)

    # The patient looks the case up and reads the approved reply.
    phone.goto(f"{base}/c/lookup?i={institution_id}")
    phone.fill("input[name=case_number]", number)
    phone.fill("input[name=code]", code)
    tap(phone, phone.get_by_role("button", name="查询"))
    main = phone.inner_text("body")
    assert "已办结" in main and "医院答复" in main and REPLY in main
    assert officer.display_name not in main and handler.display_name not in main and admin.display_name not in main
    no_sideways_scroll(phone)
    phone.screenshot(path=str(shots / "12-phone-lookup-replied.png"), full_page=True)

    # The satisfaction link from the SMS: one question, answered 满意.
    phone.goto(f"{base}/c/feedback/{token}")
    assert number in phone.content()
    phone.get_by_text("满意", exact=True).tap()
    phone.screenshot(path=str(shots / "13-phone-feedback.png"), full_page=True)
    tap(phone, phone.get_by_role("button", name="提交"))
    assert "评价已收到，谢谢您！" in phone.content()
    phone.screenshot(path=str(shots / "14-phone-feedback-thanks.png"), full_page=True)
    case = fresh(Complaint, case_id)
    fb = db.session.get(Feedback, fb.id)
    assert case.satisfaction == "satisfied" and fb.answer == "satisfied" and fb.answered_at is not None
    assert fb.reopen_status is None and case.status == Status.CLOSED

    # The case page tells the whole story.
    desktop.goto(case_page)
    assert "满意" in desktop.inner_text("#feedback")
    desktop.screenshot(path=str(shots / "15-officer-case-final.png"), full_page=True)
    trail = actions(case)
    for step in ("registered", "accept", "deadline_set", "assign", "draft_reply", "approve_reply", "send_reply",
                 "close", "feedback_opened", "feedback_answered"):
        assert step in trail, (step, trail)
    assert trail.index("accept") < trail.index("assign") < trail.index("draft_reply") < trail.index(
        "approve_reply") < trail.index("send_reply") < trail.index("close") < trail.index("feedback_answered")
    db.session.commit()
    # The complainant filed it themself: the timeline should say so in the page's language, as it does for
    # their satisfaction answer (投诉人), not show the internal actor tag "self-service".
    registered = desktop.locator("#timeline li.ev-registered").inner_text()
    assert "self-service" not in registered, registered


# 2. Deadlines through the services ----------------------------------------------------------------------

@pytest.fixture
def clock(monkeypatch):
    """The office's clock at 2026-12-30 20:00 Beijing time: every receipt below is past and within a year.

    Intake refuses receipts in the future or more than a year back; the banner's "today" decides whether
    next year is warned about (from November).
    """
    from complaints import intake, views_calendar

    now = beijing("2026-12-30 20:00")
    monkeypatch.setattr(intake, "utcnow", lambda: now.astimezone(UTC))
    monkeypatch.setattr(views_calendar, "local_today", lambda: now.date())
    workdays._warning_cache.clear()
    yield now
    workdays._warning_cache.clear()


def accepted_and_assigned(make_case, rmyy, received: str):
    """A 收费价格 complaint received at ``received`` (Beijing), accepted and routed to 财务科 by the officer."""
    officer = demo_user("rmyy-officer")
    case = make_case(received_at=beijing(received), category="charges", touchpoint="W-GH-01",
                     subject="挂号窗口重复收费", description=DESCRIPTION, wish=WISH)
    registered_due = case.due_date
    assert registered_due is not None  # the clock starts at receipt, not at acceptance
    triage.accept_complaint(case, actor=officer, expected_version=case.version)
    accepted_due = case.due_date
    assert accepted_due == registered_due
    routing.assign_department(case, routing.propose(case).department or department(rmyy, "CWK"), actor=officer,
                              expected_version=case.version)
    assert case.lead_department.code == "CWK" and case.status == Status.IN_HANDLING
    assert case.due_date == accepted_due  # one lead department: still the 5-day rule
    return case


@pytest.mark.parametrize("received, due, check", [
    ("2026-09-30 17:00", "2026-10-13", "C1: the make-up Saturday 10-10 counts"),
    ("2026-10-03 10:00", "2026-10-13", "C3: received on a holiday, not 10-14"),
    ("2026-09-19 10:00", "2026-09-24", "C3b: the make-up Sunday 09-20 counts, not 09-28"),
    ("2026-04-30 10:00", "2026-05-11", "C5: across 劳动节 and its make-up Saturday 05-09"),
    ("2026-02-13 10:00", "2026-02-27", "C4: across 春节 and its make-up Saturdays"),
])
def test_five_working_day_deadlines_around_holidays(make_case, rmyy, calendar_2026, clock, received, due, check):
    case = accepted_and_assigned(make_case, rmyy, received)
    assert (case.due_date, case.deadline_provisional, case.deadline_rule, case.working_days) == (
        day(due), False, "standard", 5), check
    assert case.due_at == datetime.combine(day(due) + timedelta(days=1), time.min, tzinfo=BEIJING)  # 24:00
    trace = case.deadline_trace
    assert trace["days"][0]["date"] == received[:10] and trace["days"][0]["counted"] is False
    assert [d["date"] for d in trace["days"] if d["counted"]][-1] == due and trace["days"][-1]["n"] == 5
    assert trace["calendar_versions"] == {"2026": 1}
    assert "deadline_set" in actions(case)


def test_c1_c2_national_day_then_a_co_handling_department_makes_it_ten_days(make_case, rmyy, calendar_2026, clock):
    officer = demo_user("rmyy-officer")
    case = accepted_and_assigned(make_case, rmyy, "2026-09-30 17:00")
    assert case.due_date == day("2026-10-13")
    counted = [(d["date"], d["kind"]) for d in case.deadline_trace["days"] if d["counted"]]
    assert counted == [("2026-10-08", "working"), ("2026-10-09", "working"), ("2026-10-10", "makeup_workday"),
                       ("2026-10-12", "working"), ("2026-10-13", "working")]
    assert all(d["kind"] == "holiday" for d in case.deadline_trace["days"] if "2026-10-01" <= d["date"] <= "2026-10-07")

    row = routing.add_co_department(case, department(rmyy, "XNK"), actor=officer, expected_version=case.version)
    assert (case.due_date, case.deadline_rule, case.working_days, case.deadline_provisional) == (
        day("2026-10-20"), "complex", 10, False)
    assert row.role == "co" and row.due_at.astimezone(BEIJING).date() == day("2026-10-17")  # 8 days, 24:00 of 10-16
    event = db.session.scalar(select(CaseEvent).where(CaseEvent.complaint_id == case.id,
                                                      CaseEvent.action == "deadline_set")
                              .order_by(CaseEvent.id.desc()))
    assert event.data["rule"] == "complex" and event.data["from"] == "2026-10-13" and event.data["to"] == "2026-10-20"
    assert "2026-10-20" in event.note


def test_c2_co_handlers_named_at_assignment_give_ten_days(make_case, rmyy, calendar_2026, clock):
    officer = demo_user("rmyy-officer")
    case = make_case(received_at=beijing("2026-09-30 17:00"), category="charges", touchpoint="W-GH-01")
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "CWK"), co=[department(rmyy, "XNK")], actor=officer)
    assert (case.due_date, case.deadline_rule) == (day("2026-10-20"), "complex")


def test_c4_ten_working_days_across_spring_festival(make_case, rmyy, calendar_2026, clock):
    officer = demo_user("rmyy-officer")
    case = make_case(received_at=beijing("2026-02-13 10:00"), category="charges")
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "CWK"), co=[department(rmyy, "XNK")], actor=officer)
    assert case.due_date == day("2026-03-05")


def test_c6_a_2027_deadline_is_provisional_until_the_2027_calendar_is_confirmed(
        client, make_case, rmyy, calendar_2026, clock):
    platform = demo_user("platform")
    case = accepted_and_assigned(make_case, rmyy, "2026-12-30 10:00")
    assert (case.due_date, case.deadline_provisional) == (day("2027-01-07"), True)  # not 01-06: 元旦 is off
    assert case.deadline_trace["calendar_versions"] == {"2026": 1, "2027": 0}
    assert lookup.public_status(case).due_provisional is True  # the patient sees it as 暂定 too

    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "2027-01-07" in page and 'class="tag tag-prov"' in page and "临时计算" in page
    assert BANNER_2027 in page
    queue = client.get(f"/i/{rmyy.id}/complaints/").get_data(as_text=True)
    assert BANNER_2027 in queue and case.case_number in queue and "临时" in queue

    # The platform admin enters 2027 (the statutory holidays, then the notice) as the calendar page does.
    assert calendar_data.prefill_statutory_holidays(2027, actor=platform) > 0
    calendar_data.mark_year_official(2027, "国办发明电〔2026〕9号", actor=platform)
    assert tasks.recompute_deadlines_job(platform.id) >= 1

    case = fresh(Complaint, case.id)
    assert (case.due_date, case.deadline_provisional) == (day("2027-01-07"), False)
    assert case.deadline_trace["calendar_versions"] == {"2026": 1, "2027": 1}
    [moved] = db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == case.id,
                                                         CaseEvent.action == "deadline_recomputed")).all()
    assert moved.data["from"] == "2027-01-07" and moved.data["to"] == "2027-01-07"
    assert moved.data["provisional"] is False and "确认不变" in moved.note
    assert moved.actor_id == platform.id

    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert 'class="tag tag-prov"' not in page and BANNER_2027 not in page
    assert "期限重算" in page and "确认不变" in page  # the timeline entry
    assert tasks.recompute_deadlines_job(platform.id) == 0  # nothing moves twice
