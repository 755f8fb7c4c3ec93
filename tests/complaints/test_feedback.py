"""The complainant's satisfaction link after closing, and 重办 (check C14)."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from complaints import feedback as feedback_service
from complaints import routing, tasks, triage
from complaints.deadlines import compute_deadline
from complaints.feedback import FeedbackError, accept_reopen, answer_feedback, refuse_reopen
from complaints.models import Channel, Feedback, Status
from complaints.replies import approve_reply, close_complaint, draft_reply, send_reply
from complaints.workflow import ConcurrentChange
from core import notify
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from tests.complaints.conftest import department, staff_login
from tests.factories import demo_user

BEIJING = timezone(timedelta(hours=8))


def closed_case(make_case, rmyy, **overrides):
    """A case handled by XNK, replied to by SMS and closed as resolved; returns (case, feedback)."""
    officer, handler = demo_user("rmyy-officer"), demo_user("rmyy-handler")
    case = make_case(**overrides)
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    approve_reply(draft_reply(case, "经核实，已整改。", actor=handler), actor=officer)
    send_reply(case, actor=officer)
    fb = close_complaint(case, True, "", actor=officer)
    db.session.flush()
    return case, fb


def feedback_path(fb: Feedback) -> str:
    return f"/c/feedback/{feedback_service.feedback_token(fb)}"


# The public page -------------------------------------------------------------------------

def test_the_page_is_a_plain_phone_form_with_the_one_question(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy)

    page = client.get(feedback_path(fb))

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "您对本次投诉的处理结果是否满意？" in html
    assert all(label in html for label in ("满意", "基本满意", "不满意", "我有新的情况或证据"))
    assert "<script" not in html
    nonce = re.search(r'<style nonce="([^"]+)"', html).group(1)
    assert f"'nonce-{nonce}'" in page.headers["Content-Security-Policy"]
    assert "min-height:60px" in html and "font:20px" in html  # big targets, large type
    assert "经核实，已整改。" in html  # the reply the complainant was sent, to recall what was decided
    assert page.headers["Cache-Control"] == "no-store"


def test_a_satisfied_answer_counts_for_the_case(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy)

    response = client.post(feedback_path(fb), data={"answer": "satisfied", "comment": "处理及时"})

    assert response.status_code == 303
    db.session.refresh(case)
    db.session.refresh(fb)
    assert (case.satisfaction, fb.answer, fb.comment, fb.reopen_status) == ("satisfied", "satisfied", "处理及时", None)
    assert case.status == Status.CLOSED
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200 and "评价已收到" in thanks.get_data(as_text=True)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.feedback.answer",
                                                       AuditEntry.target_id == str(case.id)))
    assert entry.data["answer"] == "satisfied" and "处理及时" not in str(entry.data)


def test_the_link_works_once(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy)
    assert client.post(feedback_path(fb), data={"answer": "basically"}).status_code == 303

    again = client.post(feedback_path(fb), data={"answer": "unsatisfied", "new_facts": "y"})
    retry = client.post(feedback_path(fb), data={"answer": "basically"})  # the same tap, resent on a bad network

    assert again.status_code == 409 and "只能提交一次" in again.get_data(as_text=True)
    assert retry.status_code == 200
    db.session.refresh(case)
    db.session.refresh(fb)
    assert (case.satisfaction, fb.answer, fb.reopen_status) == ("basically", "basically", None)
    with pytest.raises(FeedbackError):
        answer_feedback(fb, "unsatisfied")


def test_two_taps_at_once_store_one_answer(make_case, rmyy):
    case, fb = closed_case(make_case, rmyy)
    # the first tap's request commits while the second one is already past its checks
    db.session.execute(update(Feedback).where(Feedback.id == fb.id).values(answered_at=utcnow(), answer="satisfied")
                       .execution_options(synchronize_session=False))
    assert fb.answered_at is None  # this request still sees the link unanswered
    with pytest.raises(FeedbackError) as refused:
        answer_feedback(fb, "unsatisfied", new_facts=True)
    assert refused.value.problem == "used"
    assert (fb.answer, fb.reopen_status) == ("satisfied", None)


def test_the_link_expires_after_seven_days(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy)
    assert fb.expires_at - fb.created_at == timedelta(days=7)
    fb.expires_at = utcnow() - timedelta(seconds=1)

    page = client.get(feedback_path(fb))
    post = client.post(feedback_path(fb), data={"answer": "unsatisfied"})

    assert page.status_code == 410 and "已过期" in page.get_data(as_text=True)
    assert post.status_code == 410
    db.session.refresh(case)
    assert case.satisfaction is None


@pytest.mark.parametrize("token", ["1-abcdefabcdef", "abc", "99999999999999999999-x", "%00", "1-"])
def test_a_bad_or_forged_link_is_a_friendly_not_found(make_case, rmyy, client, token):
    response = client.get(f"/c/feedback/{token}")
    assert response.status_code in (400, 404)
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_forged_signature_for_a_real_id_is_not_accepted(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy)
    response = client.post(f"/c/feedback/{fb.id}-aaaaaaaaaaaa", data={"answer": "unsatisfied"})
    assert response.status_code == 404 and "链接无法识别" in response.get_data(as_text=True)
    db.session.refresh(fb)
    assert fb.answer is None


@pytest.mark.parametrize("data, message", [({}, "请选择您对处理结果的满意程度"),
                                           ({"answer": "maybe"}, "请选择您对处理结果的满意程度"),
                                           ({"answer": "satisfied", "comment": "字" * 1001}, "1000")])
def test_a_bad_answer_is_a_400_with_the_form_again(make_case, rmyy, client, data, message):
    case, fb = closed_case(make_case, rmyy)
    response = client.post(feedback_path(fb), data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "您对本次投诉的处理结果是否满意？" in html and message in html
    db.session.refresh(fb)
    assert fb.answered_at is None


# 重办 ---------------------------------------------------------------------------------------

def test_unhappy_with_new_facts_reopens_with_a_deadline_from_the_reopening(make_case, rmyy, client, calendar_2026,
                                                                          outbox):
    case, fb = closed_case(make_case, rmyy)
    response = client.post(feedback_path(fb), data={"answer": "unsatisfied", "comment": "退费至今未到账",
                                                   "new_facts": "y"})
    assert response.status_code == 303
    db.session.refresh(fb)
    db.session.refresh(case)
    assert (fb.reopen_status, fb.new_facts, case.satisfaction) == ("requested", True, "unsatisfied")
    assert any(m.kind == "complaint_reopen_request" for m in outbox)  # the officers were told
    assert "feedback_answered" in [e.action for e in case.events]

    reopened_at = datetime(2026, 9, 30, 17, 0, tzinfo=BEIJING)  # check C1: 5 working days → 2026-10-13
    accept_reopen(fb, actor=demo_user("rmyy-officer"), expected_version=case.version, now=reopened_at)

    assert case.status == Status.IN_HANDLING
    assert case.reopened_count == 1 and case.closed_at is None and case.resolved is None
    assert case.due_date == date(2026, 10, 13)
    assert case.deadline_trace["received_at"] == reopened_at.astimezone(UTC).isoformat()
    assert (fb.reopen_status, fb.reopened) == ("accepted", True)
    assert [e.action for e in case.events][-2:] == ["reopen", "resume"]
    # the case goes round again: a second reply is version 2, the first is kept
    reply = draft_reply(case, "补充调查后的答复", actor=demo_user("rmyy-handler"))
    assert reply.number == 2


def test_the_reopened_deadline_matches_the_deadline_engine(make_case, rmyy, calendar_2026):
    case, fb = closed_case(make_case, rmyy)
    answer_feedback(fb, "unsatisfied", new_facts=True)
    now = utcnow()
    accept_reopen(fb, actor=demo_user("rmyy-officer"), now=now)
    assert case.due_date == compute_deadline(now, case.working_days, rule=case.deadline_rule).due_date


def test_unhappy_without_new_facts_still_asks_the_officer(make_case, rmyy, client):
    """C14: every 不满意 answer creates a 重办 request; the officer sees whether new facts were reported."""
    case, fb = closed_case(make_case, rmyy)
    client.post(feedback_path(fb), data={"answer": "unsatisfied"})
    db.session.refresh(fb)
    assert (fb.reopen_status, fb.new_facts) == ("requested", False)
    staff_login(client, "rmyy-officer")  # the same browser, now an officer's
    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "重办申请" in html and "投诉人未表示有新的情况或证据" in html
    assert f"/feedback/{fb.id}/accept" in html and f"/feedback/{fb.id}/refuse" in html


def test_refusing_a_reopen_needs_a_reason_and_the_complainant_is_told(make_case, rmyy, outbox):
    case, fb = closed_case(make_case, rmyy)
    answer_feedback(fb, "unsatisfied")
    officer = demo_user("rmyy-officer")
    with pytest.raises(FeedbackError, match="理由"):
        refuse_reopen(fb, "  ", actor=officer)
    outbox.clear()

    refuse_reopen(fb, "未提供新的情况和证据材料。", actor=officer)
    db.session.commit()
    assert tasks.notify_reopen_refused(fb.id)

    assert (fb.reopen_status, case.status, case.reopened_count) == ("refused", Status.CLOSED, 0)
    assert outbox[0].recipients == ["13912345678"] and "未提供新的情况和证据材料。" in outbox[0].body
    assert outbox[0].body.startswith(notify.sms_signature(rmyy.display_name) + "您对投诉")
    with pytest.raises(FeedbackError, match="已经处理"):
        accept_reopen(fb, actor=officer)


def test_only_officers_decide_reopen_requests(make_case, rmyy):
    case, fb = closed_case(make_case, rmyy)
    answer_feedback(fb, "unsatisfied", new_facts=True)
    with pytest.raises(FeedbackError):
        accept_reopen(fb, actor=demo_user("rmyy-handler"))
    with pytest.raises(ConcurrentChange):
        accept_reopen(fb, actor=demo_user("rmyy-officer"), expected_version=case.version - 1)
    assert case.status == Status.CLOSED


def test_accepting_a_reopen_through_the_case_page_button(make_case, rmyy, client, calendar_2026):
    case, fb = closed_case(make_case, rmyy)
    answer_feedback(fb, "unsatisfied", new_facts=True)
    staff_login(client, "rmyy-officer")

    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/feedback/{fb.id}/accept",
                           data={"version": case.version})

    assert response.status_code == 303
    db.session.refresh(case)
    assert (case.status, case.reopened_count) == (Status.IN_HANDLING, 1)


def test_refuse_page_without_a_reason_is_a_400(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy)
    answer_feedback(fb, "unsatisfied")
    staff_login(client, "rmyy-officer")
    url = f"/i/{rmyy.id}/complaints/{case.id}/feedback/{fb.id}/refuse"
    assert client.get(url).status_code == 200
    assert client.post(url, data={"reason": "", "version": case.version}).status_code == 400
    db.session.refresh(fb)
    assert fb.reopen_status == "requested"


# Follow-up calls and re-driving the link -----------------------------------------------------

def test_an_officer_records_a_phone_follow_up_for_a_walk_in_without_a_phone(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy, complainant_phone=None, channel=Channel.WALK_IN)
    assert tasks.send_feedback_link(fb.id) is False  # nowhere to text it
    staff_login(client, "rmyy-officer")
    url = f"/i/{rmyy.id}/complaints/{case.id}/feedback/{fb.id}/record"

    response = client.post(url, data={"answer": "satisfied", "version": case.version})

    assert response.status_code in (302, 303)
    db.session.refresh(fb)
    db.session.refresh(case)
    assert (fb.answer, fb.answered_by_id, case.satisfaction) == ("satisfied", demo_user("rmyy-officer").id,
                                                                "satisfied")


def test_the_follow_up_call_page_shows_the_officer_the_number_to_dial(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy, complainant_phone="13912340000")
    staff_login(client, "rmyy-officer")
    page = client.get(f"/i/{rmyy.id}/complaints/{case.id}/feedback/{fb.id}/record").get_data(as_text=True)
    assert 'href="tel:13912340000"' in page


def test_a_handler_cannot_record_follow_ups(make_case, rmyy, client):
    case, fb = closed_case(make_case, rmyy)
    staff_login(client, "rmyy-handler")
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/feedback/{fb.id}/record",
                           data={"answer": "satisfied"})
    assert response.status_code == 403
    db.session.refresh(fb)
    assert fb.answer is None


def test_the_sweep_sends_links_that_were_not_sent(make_case, rmyy, outbox):
    case, fb = closed_case(make_case, rmyy)
    fb.created_at = utcnow() - timedelta(minutes=5)
    outbox.clear()
    db.session.commit()

    assert tasks.sweep_feedback_links() >= 1
    assert tasks.sweep_feedback_links() == 0
    assert [m.kind for m in outbox] == ["complaint_feedback"]
    db.session.refresh(fb)
    assert fb.link_sent_at is not None
