"""The officer's queue, the department's queue and the case page: scoping, masking, filters, stale pages."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from complaints import cohandling, pauses, queues, routing, triage
from complaints.models import CaseEvent, Status
from complaints.models.cases import OPEN_STATUS_SQL
from core import notify
from core.extensions import db
from tests.complaints.conftest import department, staff_login
from tests.factories import demo_user


def now_minus(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@pytest.fixture
def cases(make_case, rmyy, officer):
    """Three open cases with different clocks, one awaiting triage, one closed (settled)."""
    def accepted(subject, received, lead, *, co=(), emergency=False, name="王小明", channel="walk_in"):
        case = make_case(subject=subject, received_at=received, complainant_name=name, safety_emergency=emergency,
                         channel=channel)
        triage.accept_complaint(case, actor=officer)
        routing.assign_department(case, department(rmyy, lead), co=[department(rmyy, c) for c in co], actor=officer)
        return case

    made = {
        "overdue": accepted("输液等待时间过长", now_minus(30), "XNK", name="李四"),
        "soon": accepted("检查报告迟迟未出", now_minus(0.01), "FSK", co=["XNK"], emergency=True),
        "later": accepted("停车场收费不合理", now_minus(0.01), "ZWK", channel="phone"),
        "new": make_case(subject="挂号窗口排队混乱", complainant_name="赵六"),
        "settled": make_case(subject="当场解决的问题"),
    }
    triage.settle_on_the_spot(made["settled"], "当场解释", actor=officer)
    db.session.flush()
    return made


def rows(html: str) -> list[str]:
    """The subjects of the main queue table, in order."""
    table = html.split('<table class="table queue">')[-1]
    return re.findall(r'<td class="subject"><a href="[^"]+">([^<]+)</a>', table)


def test_the_officers_queue_lists_open_cases_most_urgent_first_with_masked_names(client, rmyy, cases):
    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/complaints/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # 检查报告 has a co-handler, so 10 working days instead of 5.
    assert rows(html) == ["输液等待时间过长", "停车场收费不合理", "检查报告迟迟未出"]
    assert "挂号窗口排队混乱" in html                       # the triage panel
    assert "当场解决的问题" not in html
    assert "李*" in html and "李四" not in html and "赵*" in html and "赵六" not in html
    assert "13912345678" not in html
    assert 'class="u-overdue"' in html


def test_the_queue_filters(client, rmyy, cases, categories):
    staff_login(client, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/"
    assert rows(client.get(base, query_string={"overdue": "y"}).get_data(as_text=True)) == ["输液等待时间过长"]
    assert rows(client.get(base, query_string={"emergency": "y"}).get_data(as_text=True)) == ["检查报告迟迟未出"]
    assert rows(client.get(base, query_string={"channel": "phone"}).get_data(as_text=True)) == ["停车场收费不合理"]
    xnk = department(rmyy, "XNK").id
    assert rows(client.get(base, query_string={"department_id": xnk}).get_data(as_text=True)) == [
        "输液等待时间过长", "检查报告迟迟未出"]                  # lead or co-handling
    sequence = cases["later"].case_number.split("-")[1]
    assert rows(client.get(base, query_string={"q": sequence}).get_data(as_text=True)) == ["停车场收费不合理"]
    assert rows(client.get(base, query_string={"q": "报告"}).get_data(as_text=True)) == ["检查报告迟迟未出"]
    assert rows(client.get(base, query_string={"q": "100%_"}).get_data(as_text=True)) == []
    assert rows(client.get(base, query_string={"status": "registered"}).get_data(as_text=True)) == ["挂号窗口排队混乱"]
    # The clock runs from receipt: the case awaiting triage is due like the others.
    assert rows(client.get(base, query_string={"due_within": "20"}).get_data(as_text=True)) == [
        "停车场收费不合理", "挂号窗口排队混乱", "检查报告迟迟未出"]
    assert rows(client.get(base, query_string={"due_within": "7"}).get_data(as_text=True)) == [
        "停车场收费不合理", "挂号窗口排队混乱"]
    assert rows(client.get(base, query_string={"category_id": categories["charges"].id}).get_data(as_text=True)) == []
    assert client.get(base, query_string={"due_within": "abc"}).status_code == 400


def test_a_search_finds_a_case_awaiting_triage_and_a_whole_number_opens_any_case(client, rmyy, cases):
    """An officer who just registered a case types its number: the case opens, whatever its status; part of
    a number lists the cases awaiting triage too (they are not in the default list)."""
    staff_login(client, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/"
    for key in ("new", "settled", "later"):
        number = cases[key].case_number
        for typed in (number, number.lower().replace("-", " ")):
            answer = client.get(base, query_string={"q": typed})
            assert answer.status_code == 302, (key, typed)
            assert answer.headers["Location"].endswith(f"/complaints/{cases[key].id}")
    sequence = cases["new"].case_number.split("-")[1]
    assert rows(client.get(base, query_string={"q": sequence}).get_data(as_text=True)) == ["挂号窗口排队混乱"]
    assert rows(client.get(base, query_string={"q": "排队"}).get_data(as_text=True)) == ["挂号窗口排队混乱"]


def test_the_status_groups_fit_together():
    everything = set(Status)
    assert Status.to_do() | {Status.REPLIED} | Status.finished() == everything
    assert not Status.to_do() & Status.finished() and Status.REPLIED not in Status.to_do() | Status.finished()
    assert Status.to_do() - Status.open_statuses() == {Status.REGISTERED}
    assert Status.done() | Status.no_deadline() == Status.finished()
    assert queues.OPEN_VALUES == Status.values(Status.open_statuses()) == (
        "accepted", "in_handling", "transferred", "reply_drafted", "reply_approved", "reopened")
    # The partial index of the queue was created with this text (migration 0004).
    assert OPEN_STATUS_SQL == ("status IN ('accepted', 'in_handling', 'transferred', 'reply_drafted', "
                               "'reply_approved', 'reopened')")


def test_queue_counts_come_from_one_grouped_query(rmyy, cases):
    assert queues.queue_counts(rmyy) == {"open": 3, "overdue": 1, "near": 0, "emergency": 1, "paused": 0,
                                           "registered": 1, "triage_late": 0}
    pauses.pause_clock(cases["later"], "mediation", actor=demo_user("rmyy-officer"))
    assert queues.queue_counts(rmyy, departments={department(rmyy, "ZWK").id}) == {
        "open": 1, "overdue": 0, "near": 0, "emergency": 0, "paused": 1, "registered": 0, "triage_late": 0}


def test_the_queue_page_does_not_query_per_row(client, rmyy, cases, make_case, officer, app):
    staff_login(client, "rmyy-officer")
    url = f"/i/{rmyy.id}/complaints/"
    client.get(url)

    def count_queries():
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len([s for s in statements if "SAVEPOINT" not in s])  # the test harness's, not the page's

    before = count_queries()
    for i in range(5):
        case = make_case(subject=f"更多投诉 {i}")
        triage.accept_complaint(case, actor=officer)
        routing.assign_department(case, department(rmyy, "GK"), co=[department(rmyy, "CWK")], actor=officer)
    assert count_queries() == before


def test_the_department_queue_shows_only_cases_the_handlers_departments_lead_or_co_handle(client, rmyy, cases):
    staff_login(client, "rmyy-handler")                       # XNK and CWK
    page = client.get(f"/i/{rmyy.id}/complaints/department")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert rows(html) == ["输液等待时间过长", "检查报告迟迟未出"]
    assert "本科室协办" in html and "本科室主办" in html
    assert "李*" in html and "李四" not in html
    assert client.get(f"/i/{rmyy.id}/complaints/").status_code == 403


def test_queues_belong_to_their_institution(client, rmyy, zyy, cases):
    staff_login(client, "zyy-officer")
    assert client.get(f"/i/{rmyy.id}/complaints/").status_code == 404
    assert client.get(f"/i/{zyy.id}/complaints/").status_code == 200
    assert "输液等待时间过长" not in client.get(f"/i/{zyy.id}/complaints/").get_data(as_text=True)
    assert client.get(f"/i/{zyy.id}/complaints/{cases['soon'].id}").status_code == 404


def test_nav_shows_the_workbench_to_officers_and_the_department_queue_to_handlers(client, rmyy, cases):
    staff_login(client, "rmyy-officer")
    html = client.get(f"/i/{rmyy.id}/complaints/").get_data(as_text=True)
    assert "投诉工作台" in html and "本科室投诉" not in html
    staff_login(client, "rmyy-handler")
    html = client.get(f"/i/{rmyy.id}/complaints/department").get_data(as_text=True)
    assert "本科室投诉" in html and "投诉工作台" not in html


# The case page ----------------------------------------------------------------------------

def test_the_case_page_shows_contact_only_to_officers(client, rmyy, cases):
    case = cases["overdue"]
    staff_login(client, "rmyy-officer")
    html = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "李四" in html and "13912345678" in html
    assert "首诉负责人" in html and "投诉专员" in html                # the first-contact officer by name
    assert "心血管内科" in html and "已超期" in html

    staff_login(client, "rmyy-handler")
    html = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "李四" not in html and "13912345678" not in html
    assert "李*" in html and "139****5678" in html


def test_handlers_see_only_their_departments_cases(client, rmyy, cases):
    staff_login(client, "rmyy-handler")
    assert client.get(f"/i/{rmyy.id}/complaints/{cases['soon'].id}").status_code == 200    # co-handler
    assert client.get(f"/i/{rmyy.id}/complaints/{cases['later'].id}").status_code == 404
    assert client.post(f"/i/{rmyy.id}/complaints/{cases['later'].id}/extensions",
                       data={"extension-version": cases["later"].version, "extension-extra_days": "2",
                             "extension-reason": "x"}).status_code == 404


def test_leadership_reads_the_case_page_without_contact_or_actions(client, rmyy, cases):
    staff_login(client, "rmyy-leader")
    html = client.get(f"/i/{rmyy.id}/complaints/{cases['overdue'].id}").get_data(as_text=True)
    assert "输液等待时间过长" in html and "李四" not in html and 'id="actions"' not in html


def test_an_officer_accepts_and_assigns_through_the_case_page(client, rmyy, cases, outbox):
    case = cases["new"]
    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert f'name="accept-version" type="hidden" value="{case.version}"' in page

    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/accept", data={"accept-version": case.version})
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == Status.ACCEPTED and case.due_date is not None

    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "分派科室" in page
    missing = client.post(f"/i/{rmyy.id}/complaints/{case.id}/assign", data={"assign-version": case.version})
    assert missing.status_code == 400 and "请选择主办科室" in missing.get_data(as_text=True)
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/assign", data={
        "assign-version": case.version, "assign-lead": department(rmyy, "XNK").id,
        "assign-co": [department(rmyy, "CWK").id]})
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == Status.IN_HANDLING and case.deadline_rule == "complex"
    assert sorted(m.kind for m in outbox if m.kind in ("complaint_assigned", "complaint_co")) == [
        "complaint_assigned", "complaint_co"]


def test_routing_to_a_department_without_a_handler_account_says_nobody_was_told(client, rmyy, cases, officer):
    """总务科 has no handler bound in the demo: the officer is told the notice reached nobody there."""
    staff_login(client, "rmyy-officer")
    routed = {}
    for key, lead in (("new", "ZWK"), ("later", None)):
        case = cases[key]
        if lead:
            triage.accept_complaint(case, actor=officer)
            db.session.flush()
            page = client.post(f"/i/{rmyy.id}/complaints/{case.id}/assign", data={
                "assign-version": case.version, "assign-lead": department(rmyy, lead).id}, follow_redirects=True)
        else:  # 停车场收费 went to 总务科 too; transferring it to 心血管内科 (which has a handler) warns nobody
            page = client.post(f"/i/{rmyy.id}/complaints/{case.id}/transfer", data={
                "transfer-version": case.version, "transfer-lead": department(rmyy, "XNK").id,
                "transfer-reason": "属心内科"}, follow_redirects=True)
        routed[key] = page.get_data(as_text=True)
    assert "总务科 没有绑定科室处理人账号" in routed["new"]
    assert "已转办。" in routed["later"] and "没有绑定科室处理人账号" not in routed["later"]


def test_two_officers_acting_at_once_the_second_gets_a_clear_message_and_changes_nothing(new_client, rmyy, cases,
                                                                                         app):
    case = cases["new"]
    first, second = new_client(), new_client()
    staff_login(first, "rmyy-officer")
    staff_login(second, "rmyy-admin")
    version = case.version
    assert f'value="{version}"' in first.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert f'value="{version}"' in second.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)

    assert first.post(f"/i/{rmyy.id}/complaints/{case.id}/accept",
                      data={"accept-version": version}).status_code == 302
    stale = second.post(f"/i/{rmyy.id}/complaints/{case.id}/settle",
                        data={"settle-version": version, "settle-note": "当场解释清楚"})
    html = stale.get_data(as_text=True)
    assert stale.status_code == 409
    assert "该案件刚被其他人更新" in html
    db.session.refresh(case)
    assert case.status == Status.ACCEPTED and case.settlement_note == ""
    assert [e.action for e in db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == case.id))
            ].count("settle") == 0
    # The page it returns shows the case as it is now, so the second officer can act again.
    assert "已受理" in html and 'name="accept-version"' not in html


def test_a_stale_pause_is_refused_too(client, rmyy, cases):
    case = cases["later"]
    staff_login(client, "rmyy-officer")
    stale = client.post(f"/i/{rmyy.id}/complaints/{case.id}/pause",
                        data={"pause-version": case.version - 1, "pause-reason": "mediation"})
    assert stale.status_code == 409
    db.session.refresh(case)
    assert case.paused_since is None


def test_declining_through_the_page_prefills_the_notice_for_the_reason(client, rmyy, cases, outbox):
    case = cases["new"]
    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}/decline", query_string={"reason": "in_mediation"})
    assert page.status_code == 200 and "人民调解" in page.get_data(as_text=True)

    empty = client.post(f"/i/{rmyy.id}/complaints/{case.id}/decline", data={
        "decline-version": case.version, "decline-reason": "in_mediation", "decline-notice": ""})
    assert empty.status_code == 400
    done = client.post(f"/i/{rmyy.id}/complaints/{case.id}/decline", data={
        "decline-version": case.version, "decline-reason": "in_mediation", "decline-notice": "您已申请人民调解。"})
    assert done.status_code == 302
    db.session.refresh(case)
    assert case.status == Status.DECLINED
    assert [m.body for m in outbox if m.kind == "complaint_decline_notice"] == [
        notify.sms_signature(rmyy.display_name) + "您已申请人民调解。"]
    html = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "已申请人民调解" in html and "您已申请人民调解。" in html and 'id="actions"' not in html
    assert "已告知投诉人" in html                                   # the notice job's timeline entry


def test_extension_request_and_approval_through_the_page(new_client, rmyy, cases):
    case = cases["overdue"]
    handler, officer = new_client(), new_client()
    staff_login(handler, "rmyy-handler")
    staff_login(officer, "rmyy-officer")
    old_due = case.due_date
    assert handler.post(f"/i/{rmyy.id}/complaints/{case.id}/extensions", data={
        "extension-version": case.version, "extension-extra_days": "3",
        "extension-reason": "等待外院会诊意见"}).status_code == 302
    from complaints.models import Extension

    ext = db.session.scalar(select(Extension).where(Extension.complaint_id == case.id))
    page = officer.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "等待外院会诊意见" in page and "批准延期" in page
    assert officer.post(f"/i/{rmyy.id}/complaints/{case.id}/extensions/{ext.id}", data={
        f"decide{ext.id}-version": case.version, f"decide{ext.id}-approve": "批准延期",
        f"decide{ext.id}-note": ""}).status_code == 302
    db.session.refresh(case)
    assert case.due_date > old_due


def test_co_answers_through_the_page_unblock_the_reply(client, rmyy, cases):
    case = cases["soon"]                                       # led by 放射科, 心血管内科 co-handles
    staff_login(client, "rmyy-handler")
    html = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "尚未提交协办意见" in html
    row = cohandling.co_departments(case)[0]
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/co/{row.id}/answer", data={
        f"co{row.id}-version": case.version, f"co{row.id}-answer": "经核实，当班护士已按流程处理。"})
    assert response.status_code == 302
    html = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "协办意见已齐" in html and "经核实，当班护士已按流程处理。" in html
