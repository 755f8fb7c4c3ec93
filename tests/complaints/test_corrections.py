"""Cases can be corrected (issue 10, point 5): readable subjects, replies with blanks, edits, merging duplicates."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from complaints import categories as category_service
from complaints import intake, routing, triage
from complaints.intake import derive_subject
from complaints.models import Complaint, Reply, ReplyStatus, Status
from complaints.replies import (
    DEFAULT_REPLY_TEMPLATES,
    ReplyError,
    approve_reply,
    draft_reply,
    fill_template,
    unfilled_blanks,
)
from core.extensions import db
from tests.complaints.conftest import department, hidden_fields, open_form, post_complaint, staff_login
from tests.factories import demo_user


def cases_of(institution) -> list[Complaint]:
    db.session.expire_all()
    return list(db.session.scalars(select(Complaint).where(Complaint.institution_id == institution.id)
                                   .order_by(Complaint.id)))


# A readable subject -------------------------------------------------------------------------------

def test_the_subject_skips_the_date_and_stops_at_a_natural_break_not_inside_a_word():
    text = "12月7日上午9点到门诊挂号，挂号窗口只开一个，排队的人很多，等了一个多小时才挂上号。"
    subject = derive_subject(text)
    # Before: "12月7日上午9点到门诊挂号，挂号窗口只开一个，排队的人…" and worse, cut wherever the 30th character fell.
    assert subject == "到门诊挂号，挂号窗口只开一个，排队的人很多…"
    assert len(subject) <= intake.SUBJECT_LIMIT


@pytest.mark.parametrize(("text", "subject"), [
    ("挂号窗口工作人员态度生硬。后来又去了收费处。", "挂号窗口工作人员态度生硬"),  # a whole first sentence: no "…"
    ("您好，昨天下午三点在收费处缴费，多收了我200元。", "在收费处缴费，多收了我200元"),  # greeting, day and hour go
    ("今天上午九点半在药房取药，等了很久", "在药房取药，等了很久"),
    ("2026-12-07 09:30 急诊科医生不在岗", "急诊科医生不在岗"),
    ("周三晚上8:30左右住院部电梯停运", "住院部电梯停运"),
    ("7号窗口的工作人员态度很差", "7号窗口的工作人员态度很差"),            # a window's number is not a date
    ("一点都不负责任的医生", "一点都不负责任的医生"),                        # "一点" is not one o'clock here
    ("周医生态度很差", "周医生态度很差"),                                    # nor is Dr Zhou a weekday
    ("12月7日", "12月7日"),                                                  # nothing but a date: kept as it is
])
def test_subjects_in_the_patients_words(text, subject):
    assert derive_subject(text) == subject


def test_a_long_clause_is_cut_outside_numbers_and_words_with_an_ellipsis():
    text = "门诊二楼彩超室预约检查的时间一直排到三个月以后" + "2026123456789" + "还要另外收费"
    subject = derive_subject(text)
    assert subject == "门诊二楼彩超室预约检查的时间一直排到三个月以后…"
    text = "收费处工作人员说这次检查要另外交钱然后只开一个窗口办理退费手续让人排队"
    subject = derive_subject(text)
    assert subject.endswith("…") and len(subject) <= intake.SUBJECT_LIMIT
    assert not re.search(r"[一二三四五六七八九十两几]…$", subject)                 # never "只开一…"


def test_a_patients_complaint_gets_the_readable_subject(client, rmyy, categories):

    post_complaint(client, rmyy, fields={
        "description": "12月7日上午9点到门诊挂号，挂号窗口只开一个，排队的人很多，等了一个多小时才挂上号。"})
    (case,) = cases_of(rmyy)
    assert case.subject == "到门诊挂号，挂号窗口只开一个，排队的人很多…"


@pytest.fixture
def october_2026(monkeypatch):
    """Registration accepts receipts up to a year back; the tests enter October 2026."""
    monkeypatch.setattr(intake, "utcnow", lambda: datetime(2026, 10, 9, 2, 0, tzinfo=UTC))


def officer_form(client, institution, **fields):
    hidden = open_form(client, f"/i/{institution.id}/complaints/new")
    data = {**hidden, "channel": "phone", "received_at": "2026-10-08T09:30",
            "category": str(category_service.categories_for(institution)[2].id), "subject": "",
            "description": "12月7日上午9点到门诊挂号，挂号窗口只开一个，排队的人很多，等了一个多小时才挂上号。",
            "relation": "self", "complainant_phone": "13712345678", **fields}
    return client.post(f"/i/{institution.id}/complaints/new", data=data, content_type="multipart/form-data"), data


def test_the_officers_form_asks_for_a_subject_proposing_the_derived_one(client, rmyy, categories, october_2026):
    staff_login(client, "rmyy-officer")
    assert 'placeholder="例如：' in client.get(f"/i/{rmyy.id}/complaints/new").get_data(as_text=True)

    asked, data = officer_form(client, rmyy)
    html = asked.get_data(as_text=True)
    proposed = "到门诊挂号，挂号窗口只开一个，排队的人很多…"
    assert asked.status_code == 200 and "请确认事由" in html and f'placeholder="{proposed}"' in html
    assert cases_of(rmyy) == []

    # The description changed before the second click: the new proposal is shown first.
    changed = {**data, **hidden_fields(html), "description": "收费处多收了我200元，要求退费。"}
    again = client.post(f"/i/{rmyy.id}/complaints/new", data=changed, content_type="multipart/form-data")
    assert "请确认事由" in again.get_data(as_text=True) and cases_of(rmyy) == []

    # Clicking 登记 again with the subject still empty takes the proposal shown.
    confirmed = {**changed, **hidden_fields(again.get_data(as_text=True))}
    done = client.post(f"/i/{rmyy.id}/complaints/new", data=confirmed, content_type="multipart/form-data")
    assert "投诉已登记" in done.get_data(as_text=True)
    (case,) = cases_of(rmyy)
    assert case.subject == "收费处多收了我200元，要求退费"


def test_a_subject_the_officer_typed_is_taken_at_once(client, rmyy, categories, october_2026):
    staff_login(client, "rmyy-officer")
    response, _ = officer_form(client, rmyy, subject="挂号窗口开放不足")
    assert "投诉已登记" in response.get_data(as_text=True)
    assert cases_of(rmyy)[0].subject == "挂号窗口开放不足"


def test_a_refused_registration_shows_the_proposal_too(client, rmyy, categories, october_2026):
    staff_login(client, "rmyy-officer")
    response, data = officer_form(client, rmyy, received_at="")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and 'placeholder="到门诊挂号，挂号窗口只开一个，排队的人很多…"' in html
    # Having seen it there, the officer fixes the time and registers with the proposal.
    fixed = {**data, **hidden_fields(html), "received_at": "2026-10-08T09:30"}
    done = client.post(f"/i/{rmyy.id}/complaints/new", data=fixed, content_type="multipart/form-data")
    assert "投诉已登记" in done.get_data(as_text=True)
    assert cases_of(rmyy)[0].subject == "到门诊挂号，挂号窗口只开一个，排队的人很多…"


# Replies with a template's blanks left in --------------------------------------------------------

def handling_case(make_case, rmyy, **overrides):
    """A case accepted and routed to XNK (rmyy-handler's), waiting for a reply."""
    officer = demo_user("rmyy-officer")
    case = make_case(**overrides)
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    db.session.flush()
    return case


def template(code: str):
    return next(t for t in DEFAULT_REPLY_TEMPLATES if t.code == code)


@pytest.mark.parametrize(("code", "named"), [
    ("confirmed", ["第 4 行“1.”", "第 5 行“2.”"]),
    ("explained", ["“【调查核实的情况】”"]),
    ("charges", ["“【多收/误收】”", "“【金额】”"]),
])
def test_a_shipped_template_with_its_blanks_unfilled_cannot_go_for_approval(make_case, rmyy, handler, code, named):

    case = handling_case(make_case, rmyy)
    body = fill_template(template(code), case, rmyy)
    with pytest.raises(ReplyError) as refused:
        draft_reply(case, body, actor=handler, expected_version=case.version)
    assert refused.value.field == "body"
    message = str(refused.value)
    assert all(text in message for text in named), message
    assert case.status == Status.IN_HANDLING
    assert db.session.scalars(select(Reply).where(Reply.complaint_id == case.id)).all() == []


def test_a_template_filled_in_goes_for_approval(make_case, rmyy, handler):

    case = handling_case(make_case, rmyy)
    body = fill_template(template("confirmed"), case, rmyy).replace("1. \n2. \n", "1. 对当事护士进行批评教育；\n"
                                                                               "2. 在科室内开展服务规范培训。\n")
    assert draft_reply(case, body, actor=handler).number == 1
    charges = handling_case(make_case, rmyy, category="charges")
    body = (fill_template(template("charges"), charges, rmyy)
            .replace("【多收/误收】", "多收").replace("【金额】", "36.50"))
    assert draft_reply(charges, body, actor=handler).number == 1
    attitude = handling_case(make_case, rmyy)                       # a template without blanks goes as it is
    assert draft_reply(attitude, fill_template(template("attitude"), attitude, rmyy), actor=handler).number == 1


@pytest.mark.parametrize(("body", "blanks"), [
    ("经核实，多收费用____元。", ["“____”"]),
    ("经核实，多收费用{金额}元，由××科负责退还。", ["“{金额}”", "“××”"]),
    ("整改措施：\n（1）\n（2）已完成培训", ["第 2 行“（1）”"]),
    ("整改措施：\n一、\n二、加强管理", ["第 2 行“一、”"]),
    ("请于XX日前来院办理", ["“XX”"]),
    ("【】", ["“【】”"]),
    # No blank: numbered items with their text, amounts, an X-ray, a plain bracket.
    ("1. 加强培训\n2. 增开窗口\n共计 100 元。经 X 光检查（1）号机正常。", []),
])
def test_what_counts_as_a_blank(body, blanks):

    assert unfilled_blanks(body) == blanks


def test_the_draft_page_names_the_blanks_and_keeps_the_text(make_case, rmyy, client):

    case = handling_case(make_case, rmyy)
    staff_login(client, "rmyy-handler")
    base = f"/i/{rmyy.id}/complaints/{case.id}"
    page = client.get(f"{base}/replies/new?template=confirmed").get_data(as_text=True)
    assert "【】处须填写或删去" in page
    body = fill_template(template("confirmed"), case, rmyy)
    refused = client.post(f"{base}/replies/new", data={"body": body, "version": case.version})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "答复中还有未填写的内容：第 4 行“1.”、第 5 行“2.”" in html and "感谢您对我院工作的监督" in html
    assert db.session.scalars(select(Reply).where(Reply.complaint_id == case.id)).all() == []


def test_a_draft_with_blanks_from_before_cannot_be_approved(make_case, rmyy, handler, officer):

    case = handling_case(make_case, rmyy)
    reply = draft_reply(case, "经调查核实，已整改。", actor=handler)
    reply.body = "医院已责成相关科室：\n1. \n2. \n"                   # as drafts were stored before the rule
    db.session.flush()
    with pytest.raises(ReplyError, match="请退回起草人补充"):
        approve_reply(reply, actor=officer, expected_version=case.version)
    assert reply.status == ReplyStatus.SUBMITTED and case.status == Status.REPLY_DRAFTED
