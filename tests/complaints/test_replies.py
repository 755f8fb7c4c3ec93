"""Replies: drafted by the lead department, approved by someone else (C10), sent, recorded; closing."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from complaints import cohandling, lookup, routing, tasks, triage
from complaints import feedback as feedback_service
from complaints.models import Channel, ComplaintSettings, Feedback, Reply, ReplyStatus, Status
from complaints.replies import (
    ReplyError,
    approve_reply,
    close_complaint,
    draft_reply,
    replies_for,
    return_reply,
    send_reply,
    visible_reply,
)
from complaints.workflow import ConcurrentChange, NotAllowed, WorkflowError
from core import notify
from core.audit import AuditEntry
from core.extensions import db
from organisation.models import Role
from tests.complaints.conftest import department, staff_login
from tests.factories import demo_user, make_staff


def handling_case(make_case, rmyy, *, lead: str = "XNK", co: tuple[str, ...] = (), **overrides):
    """A case accepted and routed to ``lead`` (rmyy-handler's XNK by default), waiting for a reply."""
    officer = demo_user("rmyy-officer")
    case = make_case(**overrides)
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, lead), co=[department(rmyy, c) for c in co], actor=officer)
    db.session.flush()
    return case


def replied_case(make_case, rmyy, **overrides):
    """A case whose approved reply was sent (by SMS when there is a phone)."""
    case = handling_case(make_case, rmyy, **overrides)
    reply = draft_reply(case, "经调查核实，已对相关人员进行批评教育。", actor=demo_user("rmyy-handler"))
    approve_reply(reply, actor=demo_user("rmyy-officer"))
    send_reply(case, actor=demo_user("rmyy-officer"))
    return case


# Drafting and review -------------------------------------------------------------------

def test_lead_department_handler_drafts_and_the_case_awaits_review(make_case, rmyy, handler):
    case = handling_case(make_case, rmyy)

    reply = draft_reply(case, "  您好，经调查……  ", actor=handler, expected_version=case.version)

    assert (reply.number, reply.status, reply.body, reply.drafted_by_id) == (1, ReplyStatus.SUBMITTED,
                                                                              "您好，经调查……", handler.id)
    assert case.status == Status.REPLY_DRAFTED
    assert visible_reply(case) is None
    actions = [e.action for e in case.events]
    assert "draft_reply" in actions
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.reply.draft",
                                                      AuditEntry.target_id == str(case.id))) is not None


def test_the_drafter_cannot_approve_their_own_reply(make_case, rmyy, officer, admin):
    case = handling_case(make_case, rmyy)
    reply = draft_reply(case, "答复正文", actor=officer)

    with pytest.raises(NotAllowed, match="起草人以外"):
        approve_reply(reply, actor=officer)
    assert (reply.status, case.status) == (ReplyStatus.SUBMITTED, Status.REPLY_DRAFTED)

    approve_reply(reply, actor=admin)
    assert (reply.status, reply.reviewed_by_id, case.status) == (ReplyStatus.APPROVED, admin.id,
                                                                  Status.REPLY_APPROVED)


def test_a_returned_reply_is_kept_and_the_next_draft_is_a_new_version(make_case, rmyy, handler, officer):
    case = handling_case(make_case, rmyy)
    first = draft_reply(case, "第一稿", actor=handler)
    with pytest.raises(ReplyError, match="退回意见"):
        return_reply(first, "  ", actor=officer)

    return_reply(first, "请写明整改措施。", actor=officer)
    assert case.status == Status.IN_HANDLING
    second = draft_reply(case, "第二稿：已组织科室培训。", actor=handler)

    versions = replies_for(case)
    assert [(r.number, r.body, r.status) for r in versions] == [
        (1, "第一稿", ReplyStatus.RETURNED), (2, "第二稿：已组织科室培训。", ReplyStatus.SUBMITTED)]
    assert first.review_note == "请写明整改措施。"
    assert second.id != first.id and case.status == Status.REPLY_DRAFTED


def test_a_new_version_while_one_waits_replaces_it_for_review(make_case, rmyy, handler, officer):
    case = handling_case(make_case, rmyy)
    first = draft_reply(case, "第一稿", actor=handler)
    stale_version = case.version
    second = draft_reply(case, "第二稿", actor=handler)

    assert case.version > stale_version  # a page showing the first draft is now stale
    with pytest.raises(ReplyError, match="第 2 版"):
        approve_reply(first, actor=officer)
    with pytest.raises(ConcurrentChange):
        approve_reply(second, actor=officer, expected_version=stale_version)
    approve_reply(second, actor=officer, expected_version=case.version)
    assert (first.status, first.body, second.status) == (ReplyStatus.SUBMITTED, "第一稿", ReplyStatus.APPROVED)


def test_only_the_lead_department_or_an_officer_drafts(make_case, rmyy, handler):
    case = handling_case(make_case, rmyy, lead="GK")  # 骨科: not rmyy-handler's department

    with pytest.raises(NotAllowed):
        draft_reply(case, "答复", actor=handler)
    assert replies_for(case) == []


def test_the_lead_cannot_draft_while_a_co_handler_has_not_answered(make_case, rmyy, handler, officer):
    case = handling_case(make_case, rmyy, co=("CWK",))

    with pytest.raises(WorkflowError, match="协办"):
        draft_reply(case, "答复", actor=handler)
    co_row = next(d for d in case.departments if d.role == "co")
    cohandling.record_co_answer(case, co_row, "收费无误。", actor=handler)
    assert draft_reply(case, "答复", actor=handler).number == 1


def test_an_empty_or_overlong_reply_is_refused(make_case, rmyy, handler):
    case = handling_case(make_case, rmyy)
    with pytest.raises(ReplyError):
        draft_reply(case, "   ", actor=handler)
    with pytest.raises(ReplyError):
        draft_reply(case, "字" * 5001, actor=handler)
    assert case.status == Status.IN_HANDLING


# Sending -------------------------------------------------------------------------------------

def test_sending_texts_only_the_approved_reply_and_records_it(make_case, rmyy, handler, officer, outbox):
    case = handling_case(make_case, rmyy, channel=Channel.PHONE)
    reply = draft_reply(case, "经核实，已整改。", actor=handler)
    with pytest.raises(ReplyError, match="已审核"):
        send_reply(case, actor=officer)
    approve_reply(reply, actor=officer)
    assert visible_reply(case) is None and outbox == []

    send_reply(case, actor=officer)

    assert [m.recipients for m in outbox] == [["13912345678"]]
    assert "经核实，已整改。" in outbox[0].body and case.case_number in outbox[0].body
    assert outbox[0].body.startswith(notify.sms_signature(rmyy.display_name) + "投诉处理答复")
    assert (reply.status, reply.sent_via) == (ReplyStatus.SENT, "sms")
    assert reply.sent_at is not None and case.replied_at == reply.sent_at
    assert case.first_response_at is not None and case.status == Status.REPLIED
    assert visible_reply(case).id == reply.id
    assert lookup.sent_reply(case).id == reply.id  # what the complainant's progress lookup shows


def test_a_walk_in_complainant_gets_a_printed_letter(make_case, rmyy, handler, officer, outbox, client):
    case = handling_case(make_case, rmyy, channel=Channel.WALK_IN)
    reply = draft_reply(case, "书面答复正文", actor=handler)
    staff_login(client, "rmyy-officer")
    print_url = f"/i/{rmyy.id}/complaints/{case.id}/replies/{reply.id}/print"
    assert client.get(print_url).status_code == 404  # not approved: nothing leaves the hospital

    approve_reply(reply, actor=officer)
    send_reply(case, actor=officer)

    assert reply.sent_via == "letter" and outbox == []
    page = client.get(print_url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "投诉处理答复函" in html and "书面答复正文" in html and case.case_number in html


def test_an_email_reply_needs_an_address_that_is_not_stored(make_case, rmyy, handler, officer, outbox):
    case = handling_case(make_case, rmyy, channel=Channel.EMAIL)
    reply = draft_reply(case, "邮件答复", actor=handler)
    approve_reply(reply, actor=officer)

    with pytest.raises(ReplyError, match="电子邮件"):
        send_reply(case, actor=officer)
    send_reply(case, actor=officer, email="patient@example.cn")

    assert outbox[0].recipients == ["patient@example.cn"] and reply.sent_via == "email"


def test_sms_without_a_phone_is_refused(make_case, rmyy, handler, officer):
    case = handling_case(make_case, rmyy, complainant_phone=None)
    approve_reply(draft_reply(case, "答复", actor=handler), actor=officer)
    with pytest.raises(ReplyError, match="手机号"):
        send_reply(case, actor=officer, via="sms")
    assert case.status == Status.REPLY_APPROVED


def test_the_default_log_backend_never_writes_the_phone_number(make_case, rmyy, app, caplog, monkeypatch):
    monkeypatch.setitem(app.config, "NOTIFIER_BACKEND", "log")
    with caplog.at_level(logging.INFO):
        replied_case(make_case, rmyy, channel=Channel.PHONE)
    assert "13912345678" not in caplog.text
    assert "139****5678" in caplog.text


# Closing ---------------------------------------------------------------------------------------

def test_closing_opens_a_seven_day_feedback_link_that_is_texted_once(make_case, rmyy, officer, outbox):
    case = replied_case(make_case, rmyy, channel=Channel.PHONE)
    outbox.clear()

    fb = close_complaint(case, True, "", actor=officer)

    assert (case.status, case.resolved) == (Status.CLOSED, True)
    assert fb.expires_at - case.closed_at == timedelta(days=7)
    db.session.commit()
    assert tasks.send_feedback_link(fb.id) is True
    assert tasks.send_feedback_link(fb.id) is False  # safe to run twice
    assert len(outbox) == 1 and outbox[0].recipients == ["13912345678"]
    assert f"/c/feedback/{feedback_service.feedback_token(fb)}" in outbox[0].body
    assert outbox[0].body.startswith(notify.sms_signature(rmyy.display_name) + "您反映的问题")


def test_the_feedback_link_lasts_the_institutions_configured_days(make_case, rmyy, officer):
    settings = db.session.get(ComplaintSettings, rmyy.id) or ComplaintSettings(institution_id=rmyy.id)
    settings.feedback_valid_days = 3
    db.session.add(settings)
    case = replied_case(make_case, rmyy)
    fb = close_complaint(case, True, "", actor=officer)
    assert fb.expires_at - case.closed_at == timedelta(days=3)


def test_closing_as_unresolved_needs_a_note(make_case, rmyy, officer):
    case = replied_case(make_case, rmyy)
    with pytest.raises(ReplyError, match="情况说明"):
        close_complaint(case, False, " ", actor=officer)
    close_complaint(case, False, "投诉人要求赔偿，已告知医疗纠纷处理途径。", actor=officer)
    assert (case.status, case.resolved) == (Status.CLOSED, False)
    assert db.session.scalars(select(Feedback).where(Feedback.complaint_id == case.id)).all()


def test_a_handler_cannot_close(make_case, rmyy, handler):
    case = replied_case(make_case, rmyy)
    with pytest.raises(NotAllowed):
        close_complaint(case, True, "", actor=handler)


def test_a_merged_case_is_read_only(make_case, rmyy, handler):
    case = handling_case(make_case, rmyy)
    other = make_case()
    case.merged_into_id = other.id
    with pytest.raises(NotAllowed, match="合并"):
        draft_reply(case, "答复", actor=handler)


# Through the pages -----------------------------------------------------------------------------

def test_draft_review_send_and_close_through_the_pages(make_case, rmyy, new_client, outbox):
    case = handling_case(make_case, rmyy, channel=Channel.PHONE)
    base = f"/i/{rmyy.id}/complaints/{case.id}"
    handler_browser, officer_browser = new_client(), new_client()
    staff_login(handler_browser, "rmyy-handler")
    staff_login(officer_browser, "rmyy-officer")

    page = handler_browser.get(f"{base}/replies/new?template=confirmed")
    assert page.status_code == 200 and case.case_number in page.get_data(as_text=True)
    empty = handler_browser.post(f"{base}/replies/new", data={"body": "", "version": case.version})
    assert empty.status_code == 400 and "请填写答复内容" in empty.get_data(as_text=True)
    done = handler_browser.post(f"{base}/replies/new", data={"body": "经调查，情况属实。", "version": case.version})
    assert done.status_code in (302, 303)
    reply = db.session.scalar(select(Reply).where(Reply.complaint_id == case.id))

    # the handler's own page offers no approval; a POST is refused by the service anyway
    own = handler_browser.post(f"{base}/replies/{reply.id}/approve", data={"version": case.version})
    assert own.status_code == 403  # a refused action
    db.session.refresh(reply)
    assert reply.status == ReplyStatus.SUBMITTED

    stale = officer_browser.post(f"{base}/replies/{reply.id}/approve", data={"version": case.version - 1})
    assert stale.status_code == 409 and "刚被其他人更新" in stale.get_data(as_text=True)
    db.session.refresh(reply)
    assert reply.status == ReplyStatus.SUBMITTED

    db.session.refresh(case)
    assert officer_browser.post(f"{base}/replies/{reply.id}/approve",
                                data={"version": case.version}).status_code == 303
    db.session.refresh(case)
    assert officer_browser.get(f"{base}/replies/send").status_code == 200
    sent = officer_browser.post(f"{base}/replies/send", data={"via": "sms", "version": case.version})
    assert sent.status_code in (302, 303)
    db.session.refresh(case)
    bad_close = officer_browser.post(f"{base}/close", data={"resolved": "maybe", "version": case.version})
    assert bad_close.status_code == 400
    closed = officer_browser.post(f"{base}/close", data={"resolved": "yes", "note": "", "version": case.version})
    assert closed.status_code in (302, 303)
    db.session.refresh(case)
    assert case.status == Status.CLOSED
    # the officers were told a reply waited for them; then the reply and, after the commit, the link went out
    assert [m.kind for m in outbox] == ["complaint_reply_review", "complaint_reply", "complaint_feedback"]


def test_reply_pages_of_another_hospital_are_not_found(make_case, rmyy, handler, client):
    case = handling_case(make_case, rmyy)
    reply = draft_reply(case, "答复", actor=handler)
    staff_login(client, "zyy-officer")
    assert client.get(f"/i/{rmyy.id}/complaints/{case.id}/replies/{reply.id}").status_code in (403, 404)
    assert client.get(f"/i/{rmyy.id}/complaints/{case.id}/replies/new").status_code in (403, 404)


def test_a_handler_of_another_department_cannot_open_the_reply_pages(make_case, rmyy, handler, client):
    case = handling_case(make_case, rmyy, lead="GK")
    other = make_staff([Role.DEPARTMENT_HANDLER], rmyy, departments=[department(rmyy, "EK")])
    from tests.factories import login

    login(client, other)
    assert client.get(f"/i/{rmyy.id}/complaints/{case.id}/replies").status_code == 404
