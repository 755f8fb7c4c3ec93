"""Staff are told inside the app: every complaint notice reaches the recipients' notification lists (once),
their home page lists what waits on them, a 重办 request stands on the officer's workbench, and the send-reply
page says so when no SMS gateway sent the reply."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from complaints import routing, tasks, triage
from complaints.emergency import flag_emergency
from complaints.feedback import answer_feedback
from complaints.models import CaseEvent, Channel, Status
from complaints.replies import approve_reply, draft_reply, return_reply
from core.extensions import db
from organisation.models import Notification
from tests.complaints.conftest import department, staff_login
from tests.complaints.test_feedback import closed_case
from tests.complaints.test_intake_safeguards import public_case
from tests.complaints.test_replies import handling_case
from tests.factories import demo_user, login


def notices(username: str, kind: str | None = None) -> list[Notification]:
    stmt = select(Notification).where(Notification.user_id == demo_user(username).id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return list(db.session.scalars(stmt.order_by(Notification.id)))


# Done when: a handler logging in sees the case routed to them ------------------------------------------

def test_a_handler_logging_in_sees_the_case_routed_to_them(make_case, rmyy, new_client, outbox):
    case = make_case(subject="候诊时间过长，护士态度差")
    officer, handler = new_client(), new_client()
    staff_login(officer, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/{case.id}"
    assert officer.post(f"{base}/accept", data={"accept-version": case.version}).status_code == 302
    db.session.refresh(case)
    assert officer.post(f"{base}/assign", data={"assign-version": case.version,
                                                "assign-lead": department(rmyy, "XNK").id}).status_code == 302

    staff_login(handler, "rmyy-handler")
    home = handler.get(f"/i/{rmyy.id}/").get_data(as_text=True)
    (row,) = notices("rmyy-handler")
    subject = f"新投诉 {case.case_number} 已分派至心血管内科（主办）"
    assert row.subject == subject and row.link == base
    # The header's badge, the home page's latest notices and its to-do list.
    assert '<span class="badge"><span class="visually-hidden">未读</span>1</span>' in home
    assert subject in home and f'action="/notifications/{row.id}"' in home
    assert "本科室主办、待起草答复的投诉" in home and f"{case.case_number} 候诊时间过长" in home
    listed = handler.get("/notifications").get_data(as_text=True)
    assert subject in listed and "办理期限" in listed
    opened = handler.post(f"/notifications/{row.id}")
    assert opened.status_code == 302 and opened.headers["Location"] == base
    assert handler.get(base).status_code == 200


def test_a_notice_reads_in_the_language_of_its_reader_and_goes_out_in_chinese(make_case, rmyy, officer, client,
                                                                              outbox):
    case = make_case()
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    db.session.flush()
    assert tasks.notify_department(case.id, department(rmyy, "XNK").id) == 1
    due = case.due_date.isoformat()
    chinese_subject = f"新投诉 {case.case_number} 已分派至心血管内科（主办）"
    (sent,) = outbox  # the outbound channels, and the stored text, stay in Chinese
    assert sent.subject == chinese_subject and sent.body.startswith(f"办理期限：{due}。")
    assert notices("rmyy-handler")[0].subject == chinese_subject

    staff_login(client, "rmyy-handler")
    for path in ("/notifications", f"/i/{rmyy.id}/"):
        assert chinese_subject in client.get(path).get_data(as_text=True)
    client.get("/lang/en")
    for path in ("/notifications", f"/i/{rmyy.id}/"):
        html = client.get(path).get_data(as_text=True)
        assert f"New complaint {case.case_number} assigned to 心血管内科 (lead)" in html, path
        assert f"Deadline: {due}. See" in html and "已分派" not in html and "办理期限" not in html
    client.get("/lang/zh_Hans")
    assert chinese_subject in client.get("/notifications").get_data(as_text=True)


def reminded_and_escalated(make_case, rmyy):
    """A case led by 心血管内科, due 2026-10-13, through the deadline sweep the day before (the reminder) and
    after it (督办)."""
    officer = demo_user("rmyy-officer")
    case = make_case(received_at=datetime(2026, 9, 30, 9, 0, tzinfo=UTC))
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    db.session.flush()
    tasks.sweep_deadlines(datetime(2026, 10, 12, 1, 0, tzinfo=UTC).isoformat())
    tasks.sweep_deadlines(datetime(2026, 10, 15, 1, 0, tzinfo=UTC).isoformat())
    return case


def test_a_reminder_reads_in_english_for_an_english_reader(make_case, rmyy, calendar_2026, client, outbox):
    case = reminded_and_escalated(make_case, rmyy)
    staff_login(client, "rmyy-handler")
    client.get("/lang/en")
    html = client.get("/notifications").get_data(as_text=True)
    assert f"Complaint {case.case_number} is due on 2026-10-13" in html
    assert f"Escalation: complaint {case.case_number} is overdue" in html and "lead department: 心血管内科" in html
    assert "督办" not in html and "将于" not in html


def test_routing_notices_come_once_per_routing(make_case, rmyy, officer, outbox):
    case = make_case()
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    db.session.flush()
    assert tasks.notify_department(case.id, department(rmyy, "XNK").id) == 1
    tasks.notify_department(case.id, department(rmyy, "XNK").id)  # the job ran twice
    assert len(notices("rmyy-handler")) == 1 and len(outbox) == 1

    routing.transfer_complaint(case, department(rmyy, "EK"), "不属本科", actor=officer)
    routing.receive_transfer(case, actor=officer)
    routing.transfer_complaint(case, department(rmyy, "XNK"), "仍由心内科主办", actor=officer)
    db.session.flush()
    tasks.notify_department(case.id, department(rmyy, "XNK").id, tasks.TRANSFERRED)
    assert [n.kind for n in notices("rmyy-handler")] == ["complaint_assigned", "complaint_transferred"]


# Every other notice reaches the list too ---------------------------------------------------------------

def test_reminders_and_escalations_reach_the_lists(make_case, rmyy, calendar_2026, outbox):
    case = reminded_and_escalated(make_case, rmyy)
    (reminder,) = notices("rmyy-handler", "complaint_reminder")
    assert reminder.key == f"complaint:{case.id}:reminder:2026-10-13" and "2026-10-13" in reminder.subject
    assert notices("rmyy-leader", "complaint_escalation")[0].subject.startswith("督办：")
    assert len(notices("rmyy-officer", "complaint_escalation")) == 1


def test_an_emergency_reaches_officers_admins_and_leadership_and_a_failed_send_records_nothing(
        make_case, app, monkeypatch, outbox):
    case = make_case()
    flag_emergency(case, actor=demo_user("rmyy-officer"))
    db.session.commit()
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "broken")  # not a backend: the send raises
    with pytest.raises(ValueError):
        tasks.notify_emergency(case.id)
    assert [n for n in notices("rmyy-leader") if n.key == f"complaint:{case.id}:emergency"] == []  # rolled back
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "memory")
    assert tasks.sweep_emergency_notices() == 1
    for username in ("rmyy-officer", "rmyy-admin", "rmyy-leader"):
        (row,) = [n for n in notices(username, "complaint_emergency") if n.key == f"complaint:{case.id}:emergency"]
        assert row.subject.startswith("【紧急】") and row.link == f"/i/{case.institution_id}/complaints/{case.id}"


def test_emergency_and_safety_report_notices_read_in_english_with_the_category_translated(make_case, rmyy, client,
                                                                                        outbox):
    reported = public_case(make_case, touchpoint="W-GH-01")
    assert tasks.notify_safety_reports(rmyy.id) == 1
    flagged = make_case(departments_concerned=["XNK"])
    flag_emergency(flagged, actor=demo_user("rmyy-officer"))
    db.session.commit()
    assert tasks.notify_emergency(flagged.id) is True
    report, alarm = outbox
    assert report.subject == "【待核实】1 件网上投诉涉及医疗质量安全" and f"\n{reported.case_number}（" in report.body
    assert alarm.body.startswith(f"案件 {flagged.case_number}（服务态度）涉及医疗质量安全")

    staff_login(client, "rmyy-officer")
    client.get("/lang/en")
    html = client.get("/notifications").get_data(as_text=True)
    assert "[To check] 1 online complaint(s) about medical quality and safety" in html
    assert f"{reported.case_number} (" in html and "Complainants chose" in html
    assert f"[URGENT] Medical quality and safety complaint {flagged.case_number}" in html
    assert f"Case {flagged.case_number} (Staff attitude) concerns" in html and "Concerns: 心血管内科." in html
    assert "医疗质量安全" not in html and "服务态度" not in html


def test_a_reply_waiting_for_review_reaches_the_other_officers_and_a_returned_one_its_drafter(make_case, rmyy,
                                                                                           outbox):
    case = handling_case(make_case, rmyy)
    reply = draft_reply(case, "经调查，情况属实。", actor=demo_user("rmyy-handler"))
    db.session.flush()
    assert tasks.notify_reply_review(reply.id) >= 2  # the officer and the admin
    (review,) = notices("rmyy-officer", "complaint_reply_review")
    assert review.link.endswith("#replies") and f"答复第 {reply.number} 版" in review.subject
    assert notices("rmyy-handler", "complaint_reply_review") == []

    return_reply(reply, "请补充整改措施。", actor=demo_user("rmyy-officer"))
    db.session.flush()
    assert tasks.notify_reply_returned(reply.id) == 1
    assert [n.kind for n in notices("rmyy-handler")][-1] == "complaint_reply_returned"


def test_an_officer_drafting_a_reply_is_not_told_to_review_it(make_case, rmyy, outbox):
    case = handling_case(make_case, rmyy)
    reply = draft_reply(case, "答复", actor=demo_user("rmyy-officer"))
    db.session.flush()
    tasks.notify_reply_review(reply.id)
    assert notices("rmyy-officer", "complaint_reply_review") == []
    assert len(notices("rmyy-admin", "complaint_reply_review")) == 1


def test_drafting_through_the_page_tells_the_reviewers(make_case, rmyy, client, outbox):
    case = handling_case(make_case, rmyy)
    staff_login(client, "rmyy-handler")
    client.post(f"/i/{rmyy.id}/complaints/{case.id}/replies/new",
                data={"body": "经调查属实。", "version": case.version})
    assert len(notices("rmyy-officer", "complaint_reply_review")) == 1


# 重办: on the officer's to-do list and workbench --------------------------------------------------------

def test_a_reopen_request_is_on_the_officers_list_to_do_and_workbench(make_case, rmyy, client, outbox):
    case, fb = closed_case(make_case, rmyy, subject="退费两周仍未到账")
    answer_feedback(fb, "unsatisfied", "仍未到账", True)
    db.session.flush()
    tasks.notify_reopen_request(fb.id)
    tasks.notify_reopen_request(fb.id)  # once
    (row,) = notices("rmyy-officer", "complaint_reopen_request")
    assert row.link == f"/i/{rmyy.id}/complaints/{case.id}#feedback"

    staff_login(client, "rmyy-officer")
    home = client.get(f"/i/{rmyy.id}/").get_data(as_text=True)
    assert "重办申请待决定" in home and f"{case.case_number} 退费两周仍未到账" in home and "有新情况或证据" in home
    workbench = client.get(f"/i/{rmyy.id}/complaints/").get_data(as_text=True)
    assert case.status == Status.CLOSED  # so it is not in the queue of open cases …
    assert 'id="reopen"' in workbench and "重办申请待决定（1）" in workbench  # … but on the workbench
    assert f"/i/{rmyy.id}/complaints/{case.id}#feedback" in workbench


# The to-do list per role ----------------------------------------------------------------------------

def test_the_handlers_to_do_lists_co_handling_answers_and_transfers(make_case, rmyy, client, officer):
    co_case = make_case(subject="协办案件")
    triage.accept_complaint(co_case, actor=officer)
    routing.assign_department(co_case, department(rmyy, "EK"), co=[department(rmyy, "XNK")], actor=officer)
    moved = make_case(subject="转办案件")
    triage.accept_complaint(moved, actor=officer)
    routing.assign_department(moved, department(rmyy, "EK"), actor=officer)
    routing.transfer_complaint(moved, department(rmyy, "CWK"), "收费问题", actor=officer)
    db.session.flush()
    staff_login(client, "rmyy-handler")
    home = client.get(f"/i/{rmyy.id}/").get_data(as_text=True)
    assert "待提交协办意见" in home and f"{co_case.case_number} 协办案件" in home
    assert "转给本科室、待接收的投诉" in home


def test_the_officers_to_do_counts_what_the_workbench_counts(make_case, rmyy, client, officer):
    make_case()  # registered, waiting for triage
    staff_login(client, "rmyy-officer")
    home = client.get(f"/i/{rmyy.id}/").get_data(as_text=True)
    workbench = client.get(f"/i/{rmyy.id}/complaints/").get_data(as_text=True)
    waiting = re.search(r'<span class="todo-count">(\d+)</span><span class="todo-label">待受理</span>', home)
    tile = re.search(r'<span class="n">(\d+)</span><span class="l">待受理</span>', workbench)
    assert waiting and tile and waiting.group(1) == tile.group(1)
    assert f'href="/i/{rmyy.id}/complaints/?status=registered"' in home


def test_leadership_and_other_hospitals_get_no_complaint_to_do(rmyy, client):
    staff_login(client, "rmyy-leader")
    home = client.get(f"/i/{rmyy.id}/").get_data(as_text=True)
    assert "待受理" not in home and "目前没有等您处理的事项" in home


# Sending a reply without an SMS gateway -----------------------------------------------------------------

def approved_case(make_case, rmyy):
    case = handling_case(make_case, rmyy, channel=Channel.PHONE)
    approve_reply(draft_reply(case, "经调查，情况属实。", actor=demo_user("rmyy-handler")),
                  actor=demo_user("rmyy-officer"))
    db.session.flush()
    return case


def test_without_an_sms_gateway_the_send_page_says_the_reply_is_only_recorded(make_case, rmyy, client, app,
                                                                             monkeypatch, outbox):
    monkeypatch.setitem(app.config, "SMS_GATEWAY", False)  # as with the default log backend
    case = approved_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    path = f"/i/{rmyy.id}/complaints/{case.id}/replies/send"
    form = client.get(path).get_data(as_text=True)
    assert "本系统未配置短信网关" in form
    page = client.post(path, data={"via": "sms", "version": case.version}, follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "答复已发送并记录" not in html
    assert "答复已记录，但短信没有发出。" in html and "请电话告知投诉人答复内容" in html
    event = db.session.scalar(select(CaseEvent).where(CaseEvent.complaint_id == case.id,
                                                      CaseEvent.action == "send_reply"))
    assert event.data["delivered"] is False and "短信没有发出" in event.note
    case_page = client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)
    assert "未配置网关，没有发出" in case_page  # the case page does not claim the text went out


def test_with_an_sms_gateway_the_reply_is_sent(make_case, rmyy, client, app, monkeypatch, outbox):
    monkeypatch.setitem(app.config, "SMS_GATEWAY", True)
    case = approved_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    path = f"/i/{rmyy.id}/complaints/{case.id}/replies/send"
    assert "未配置短信网关" not in client.get(path).get_data(as_text=True)
    html = client.post(path, data={"via": "sms", "version": case.version}, follow_redirects=True).get_data(as_text=True)
    assert "答复已发送并记录。" in html and "没有发出" not in html
    assert [m.kind for m in outbox][-1] == "complaint_reply"
    assert "未配置网关" not in client.get(f"/i/{rmyy.id}/complaints/{case.id}").get_data(as_text=True)


@pytest.mark.parametrize("gateway", [False, True])
def test_closing_says_whether_the_feedback_link_is_texted(make_case, rmyy, client, app, monkeypatch, outbox, gateway):
    """The close page and the case page agree with the send page: without a gateway nothing is texted."""
    monkeypatch.setitem(app.config, "SMS_GATEWAY", gateway)
    case = approved_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/{case.id}"
    client.post(f"{base}/replies/send", data={"via": "letter", "version": case.version})
    db.session.refresh(case)
    close_page = client.get(f"{base}/close").get_data(as_text=True)
    assert ("本系统未配置短信网关" in close_page) is not gateway
    assert ("发送一次性满意度回访链接" in close_page) is gateway
    client.post(f"{base}/close", data={"resolved": "yes", "note": "", "version": case.version})
    case_page = client.get(base).get_data(as_text=True)
    assert ("短信已发送" in case_page) is gateway
    assert ("未配置短信网关，短信未发出" in case_page) is not gateway


def test_a_letter_needs_no_gateway(make_case, rmyy, client, app, monkeypatch, outbox):
    monkeypatch.setitem(app.config, "SMS_GATEWAY", False)
    case = approved_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    path = f"/i/{rmyy.id}/complaints/{case.id}/replies/send"
    html = client.post(path, data={"via": "letter", "version": case.version},
                       follow_redirects=True).get_data(as_text=True)
    assert "答复已发送并记录。" in html and "没有发出" not in html


def test_other_hospitals_staff_see_none_of_these_notices(make_case, rmyy, client, outbox, officer):
    case = make_case()
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    db.session.flush()
    tasks.notify_department(case.id, department(rmyy, "XNK").id)
    login(client, demo_user("zyy-handler"))
    assert case.case_number not in client.get("/notifications?show=all").get_data(as_text=True)
    assert notices("zyy-handler") == []
