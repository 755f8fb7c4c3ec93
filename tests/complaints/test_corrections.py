"""Cases can be corrected (issue 10, point 5): readable subjects, replies with blanks, edits, merging duplicates."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from complaints import categories as category_service
from complaints import corrections, intake, ledger, lookup, pauses, routing, stats, triage
from complaints.models import (
    Attachment,
    CaseEvent,
    Channel,
    Complaint,
    DeclineReason,
    PauseReason,
    Reply,
    ReplyStatus,
    Status,
)
from complaints.replies import (
    DEFAULT_REPLY_TEMPLATES,
    ReplyError,
    approve_reply,
    draft_reply,
    fill_template,
    unfilled_blanks,
)
from complaints.subjects import SUBJECT_LIMIT, derive_subject
from complaints.workflow import ConcurrentChange, NotAllowed
from core.audit import AuditEntry
from core.extensions import db
from core.services import ServiceError
from organisation.models import Department
from tests.complaints.conftest import department, hidden_fields, open_form, photo, post_complaint, staff_login
from tests.factories import demo_institution, demo_user


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
    assert len(subject) <= SUBJECT_LIMIT


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
    # How an officer's note of a call opens is not the matter either.
    ("患者家属来电反映，12月7日上午9点门诊药房只开一个窗口。", "门诊药房只开一个窗口"),
    ("投诉人称：收费处多收了挂号费", "收费处多收了挂号费"),
    ("患者来电：医生态度不好", "医生态度不好"),
    ("称重台坏了没人修", "称重台坏了没人修"),                                # a word, not "(患者)称"
    ("家属陪护床太贵", "家属陪护床太贵"),
])
def test_subjects_in_the_patients_words(text, subject):
    assert derive_subject(text) == subject


def test_a_long_clause_is_cut_outside_numbers_and_words_with_an_ellipsis():
    text = "门诊二楼彩超室预约检查的时间一直排到三个月以后" + "2026123456789" + "还要另外收费"
    subject = derive_subject(text)
    assert subject == "门诊二楼彩超室预约检查的时间一直排到三个月以后…"
    text = "收费处工作人员说这次检查要另外交钱然后只开一个窗口办理退费手续让人排队"
    subject = derive_subject(text)
    assert subject.endswith("…") and len(subject) <= SUBJECT_LIMIT
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
    ("We found that you were [overcharged] [amount] yuan.", ["“[overcharged]”", "“[amount]”"]),
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


# Correcting a case -------------------------------------------------------------------------------

def audit(case, action: str) -> list[dict]:
    return [e.data for e in db.session.scalars(select(AuditEntry).where(
        AuditEntry.target_type == "complaint", AuditEntry.target_id == str(case.id), AuditEntry.action == action)
        .order_by(AuditEntry.id))]


def events(case, action: str) -> list[CaseEvent]:
    return list(db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == case.id,
                                                           CaseEvent.action == action).order_by(CaseEvent.id)))


def test_an_officer_corrects_the_registration_and_the_old_values_are_kept(make_case, rmyy, categories, officer):
    case = make_case(channel=Channel.PHONE, subject="12月7日上午9点到门诊挂号，挂号窗口只开一", category="attitude",
                     departments_concerned=["XNK"])
    version = case.version
    xnk, cwk = department(rmyy, "XNK"), department(rmyy, "CWK")

    result = corrections.correct_case(
        case, subject="挂号窗口只开一个，排队一个多小时", category=categories["environment"], channel=Channel.WALK_IN,
        departments=[cwk, xnk], reason="电话登记时选错了渠道", actor=officer, expected_version=version)

    assert (case.subject, case.category_id, case.channel) == ("挂号窗口只开一个，排队一个多小时",
                                                              categories["environment"].id, Channel.WALK_IN)
    assert {d.code for d in case.concerned_departments} == {"XNK", "CWK"}
    assert case.version > version
    assert result.transferred_to is None
    (event,) = events(case, "edited")
    assert event.actor_id == officer.id
    assert "事由：12月7日上午9点到门诊挂号，挂号窗口只开一 → 挂号窗口只开一个，排队一个多小时" in event.note
    assert "投诉类别：服务态度 → 环境后勤" in event.note and "来源渠道：来电 → 来访" in event.note
    assert "涉及科室：心血管内科 → " in event.note and "原因：电话登记时选错了渠道" in event.note
    (entry,) = audit(case, "complaint.edit")
    assert entry["subject"] == ["12月7日上午9点到门诊挂号，挂号窗口只开一", "挂号窗口只开一个，排队一个多小时"]
    assert entry["category"] == ["attitude", "environment"] and entry["channel"] == ["phone", "walk_in"]
    assert entry["departments"] == [[xnk.id], sorted([xnk.id, cwk.id], key=lambda i: db.session.get(
        Department, i).code)]
    assert entry["reason"] == "电话登记时选错了渠道"


def test_a_correction_before_routing_changes_the_departments_the_proposal_reads(make_case, rmyy, categories,
                                                                                officer):
    case = make_case(departments_concerned=["XNK"])
    triage.accept_complaint(case, actor=officer)
    assert routing.propose(case).department.code == "XNK"
    corrections.correct_case(case, subject=case.subject, category=categories["attitude"], channel=case.channel,
                             departments=[department(rmyy, "CWK")], actor=officer)
    assert routing.propose(case).department.code == "CWK"
    assert case.lead_department_id is None and case.status == Status.ACCEPTED


def test_another_lead_department_is_a_transfer_with_the_corrections_reason(make_case, rmyy, categories, officer):
    case = handling_case(make_case, rmyy)
    fields = {"subject": case.subject, "category": categories["attitude"], "channel": case.channel}
    with pytest.raises(ServiceError) as missing:
        corrections.correct_case(case, **fields, lead=department(rmyy, "CWK"), actor=officer)
    assert missing.value.field == "reason" and case.status == Status.IN_HANDLING

    result = corrections.correct_case(case, **fields, lead=department(rmyy, "CWK"), reason="实为收费问题",
                                      actor=officer, expected_version=case.version)
    assert result.transferred_to.code == "CWK"
    assert case.status == Status.TRANSFERRED and case.lead_department.code == "CWK"
    (transfer,) = events(case, "transfer")
    assert "实为收费问题" in transfer.note
    assert events(case, "edited") == []                       # nothing else changed: the transfer says it all


def test_the_lead_department_cannot_change_where_no_transfer_is_possible(make_case, rmyy, categories, officer,
                                                                         handler):
    case = handling_case(make_case, rmyy)
    draft_reply(case, "经调查核实，已整改。", actor=handler)
    with pytest.raises(NotAllowed, match="转办"):
        corrections.correct_case(case, subject=case.subject, category=categories["attitude"], channel=case.channel,
                                 lead=department(rmyy, "CWK"), reason="改派", actor=officer)


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"subject": "  "}, "subject", "请填写事由"),
    ({"channel": "hotline_12345"}, "channel_ref", "工单编号"),
    ({"channel": "self_service"}, "channel", "由系统记录"),
    ({"channel": "carrier_pigeon"}, "channel", "请选择来源渠道"),
    ({"category": None}, "category", "请选择投诉类别"),
    ({}, None, "没有修改任何内容"),
])
def test_bad_corrections_are_refused_with_the_field(make_case, rmyy, categories, officer, change, field, message):
    case = make_case(channel=Channel.PHONE)
    values = {"subject": case.subject, "category": categories["attitude"], "channel": Channel.PHONE, **change}
    with pytest.raises(ServiceError, match=message) as refused:
        corrections.correct_case(case, **values, actor=officer)
    assert refused.value.field == field


def test_only_officers_correct_and_only_on_a_current_page(make_case, rmyy, categories, officer, handler):
    case = handling_case(make_case, rmyy)
    values = {"subject": "新的事由", "category": categories["attitude"], "channel": case.channel}
    with pytest.raises(NotAllowed):
        corrections.correct_case(case, **values, actor=handler)
    with pytest.raises(ConcurrentChange):
        corrections.correct_case(case, **values, actor=officer, expected_version=case.version - 1)
    assert case.subject == "挂号窗口态度生硬"
    with pytest.raises(ServiceError, match="不属于本院"):
        corrections.correct_case(case, **values, departments=[department(demo_institution("zyy"), "ZYNK")],
                                 actor=officer)


def test_a_quality_and_safety_category_pages_nobody_until_the_officer_flags_it(client, make_case, rmyy, categories,
                                                                             outbox):
    case = make_case()
    staff_login(client, "rmyy-officer")
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/edit", data={
        "edit-version": case.version, "edit-subject": case.subject, "edit-category": categories["quality_safety"].id,
        "edit-channel": "walk_in"})
    assert response.status_code == 302
    db.session.refresh(case)
    assert not case.safety_emergency and outbox == []   # as at registration: the category alone pages nobody
    assert client.post(f"/i/{rmyy.id}/complaints/{case.id}/emergency").status_code == 302
    db.session.refresh(case)
    assert case.safety_emergency and [m.kind for m in outbox] == ["complaint_emergency"]


def test_correcting_through_the_case_page(new_client, make_case, rmyy, categories):
    case = handling_case(make_case, rmyy, channel=Channel.PHONE, departments_concerned=["XNK"])
    officer, handler = new_client(), new_client()
    staff_login(officer, "rmyy-officer")
    staff_login(handler, "rmyy-handler")
    base = f"/i/{rmyy.id}/complaints/{case.id}"
    page = officer.get(base).get_data(as_text=True)
    assert 'id="corrections"' in page and 'name="edit-subject"' in page and 'value="挂号窗口态度生硬"' in page
    data = {"edit-version": case.version, "edit-subject": "挂号窗口只开一个",
            "edit-category": categories["attitude"].id, "edit-channel": "walk_in",
            "edit-departments": [department(rmyy, "XNK").id], "edit-lead": department(rmyy, "XNK").id}

    stale = officer.post(f"{base}/edit", data={**data, "edit-version": case.version - 1})
    assert stale.status_code == 409 and "该案件刚被其他人更新" in stale.get_data(as_text=True)
    bad = officer.post(f"{base}/edit", data={**data, "edit-channel": "hotline_12345"})
    assert bad.status_code == 400 and "12345 热线转办须填写工单编号" in bad.get_data(as_text=True)
    assert officer.post(f"{base}/edit", data=data).status_code == 302
    db.session.refresh(case)
    assert case.subject == "挂号窗口只开一个" and case.channel == Channel.WALK_IN and case.status == Status.IN_HANDLING
    page = officer.get(base).get_data(as_text=True)
    assert "更正登记信息" in page and "事由：挂号窗口态度生硬 → 挂号窗口只开一个" in page

    # The lead department's handler reads the case but corrects nothing.
    page = handler.get(base).get_data(as_text=True)
    assert case.subject in page and 'id="corrections"' not in page
    refused = handler.post(f"{base}/edit", data={**data, "edit-version": case.version, "edit-subject": "改"})
    assert refused.status_code == 403
    db.session.refresh(case)
    assert case.subject == "挂号窗口只开一个"


def test_the_lead_department_is_offered_where_a_transfer_is_possible(client, make_case, rmyy, categories, outbox):
    case = handling_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/{case.id}"
    assert 'name="edit-lead"' in client.get(base).get_data(as_text=True)
    response = client.post(f"{base}/edit", data={
        "edit-version": case.version, "edit-subject": case.subject, "edit-category": categories["attitude"].id,
        "edit-channel": "walk_in", "edit-lead": department(rmyy, "CWK").id, "edit-reason": "实为收费问题"})
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == Status.TRANSFERRED and case.lead_department.code == "CWK"
    assert "complaint_transferred" in [m.kind for m in outbox]


# Merging a duplicate -----------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def test_a_duplicate_is_merged_and_both_timelines_name_each_other(make_case, rmyy, officer):
    primary = handling_case(make_case, rmyy, complainant_phone="13600001111")
    duplicate = make_case(channel=Channel.SELF_SERVICE, first_contact=None, actor="self-service",
                          complainant_phone="13600001111")
    triage.accept_complaint(duplicate, actor=officer)
    pauses.pause_clock(duplicate, PauseReason.AWAITING_MATERIAL, actor=officer)
    versions = (duplicate.version, primary.version)

    joined = corrections.merge_case(duplicate, primary.case_number.lower(), "同一患者扫码与来电重复投诉",
                                    actor=officer, expected_version=duplicate.version)

    assert joined is primary
    assert duplicate.status == Status.MERGED and duplicate.merged_into_id == primary.id
    assert duplicate.closed_at is not None and primary.closed_at is None   # the purge's retention runs from it
    assert duplicate.paused_since is None and pauses.open_pause(duplicate) is None   # its clock is over
    assert duplicate.version > versions[0] and primary.version > versions[1]          # both pages go stale
    (gone,) = events(duplicate, "merge")
    assert (gone.from_status, gone.to_status) == (Status.ACCEPTED, Status.MERGED)
    assert gone.note == f"已并入 {primary.case_number}：同一患者扫码与来电重复投诉"
    assert gone.data == {"case_id": primary.id, "case_number": primary.case_number}
    (came,) = events(primary, "merged_in")
    assert came.note == f"合并了 {duplicate.case_number}：同一患者扫码与来电重复投诉"
    assert came.data == {"case_id": duplicate.id, "case_number": duplicate.case_number}
    assert audit(duplicate, "complaint.merge")[0]["to"] == "merged"
    assert audit(primary, "complaint.merged_in") == [{"duplicate": duplicate.id,
                                                      "case_number": duplicate.case_number}]
    assert primary.status == Status.IN_HANDLING                                        # it carries on
    assert corrections.merged_cases(primary) == [duplicate]


def test_the_complainants_lookup_of_the_duplicate_shows_the_case_it_joined(make_case, rmyy, officer):
    primary = handling_case(make_case, rmyy)
    duplicate = make_case()
    corrections.merge_case(duplicate, primary.case_number, "重复", actor=officer)
    status = lookup.public_status(lookup.find_case(rmyy.id, duplicate.case_number, duplicate.plain_lookup_code))
    assert status.merged and status.case_number == duplicate.case_number and status.stage == "正在调查处理"


def test_the_case_to_merge_into_may_be_named_by_its_sequence_alone(make_case, rmyy, officer):
    primary = handling_case(make_case, rmyy)
    duplicate = make_case(channel=Channel.SELF_SERVICE, first_contact=None, actor="self-service")
    sequence = primary.case_number.split("-")[1]

    assert corrections.find_case(rmyy.id, sequence) is primary
    assert corrections.find_case(rmyy.id, str(int(sequence))) is primary
    assert corrections.find_case(rmyy.id, "9999999") is None
    joined = corrections.merge_case(duplicate, sequence, "同一事项重复登记", actor=officer,
                                    expected_version=duplicate.version)
    assert joined is primary


def test_the_statistics_count_a_merged_matter_once(make_case, rmyy, officer):
    period = stats.parse_period(None)
    before = stats.summaries([rmyy.id], period)[rmyy.id]
    primary = handling_case(make_case, rmyy, complainant_phone="13600002222", subject="停车场收费不合理")
    duplicate = make_case(complainant_phone="13600002222", subject="停车场收费不合理")
    both = stats.summaries([rmyy.id], period)[rmyy.id]
    assert both.received == before.received + 2
    cohort = stats._cohort([rmyy.id], period)
    assert any(primary.case_number in numbers for _token, numbers in stats.repeat_complainants(cohort))

    corrections.merge_case(duplicate, primary.case_number, "同一事项", actor=officer)
    db.session.flush()
    after = stats.summaries([rmyy.id], period)[rmyy.id]
    assert after.received == before.received + 1 and after.accepted == before.accepted + 1
    assert after.registered == before.registered
    assert not any(primary.case_number in numbers for _token, numbers in stats.repeat_complainants(cohort))
    report = stats.report(rmyy, period)
    assert "已合并" not in dict(report.by_status)
    # The ledger still lists the duplicate, as merged, with no on-time verdict of its own.
    rows = {row.case_number: row for row in ledger.page_of(rmyy, ledger.LedgerFilter(), per_page=500).items}
    assert rows[duplicate.case_number].status == "merged" and rows[duplicate.case_number].on_time is None


@pytest.mark.parametrize("problem", ["missing", "itself", "other_hospital", "finished", "merged_away", "no_reason",
                                     "has_duplicates"])
def test_merges_that_cannot_be(make_case, rmyy, zyy, officer, problem):
    duplicate = make_case()
    primary = handling_case(make_case, rmyy)
    number, reason, message = primary.case_number, "重复", ""
    if problem == "missing":
        number, message = "TS2099-99999", "本院没有编号为“TS2099-99999”的案件"
    elif problem == "itself":
        number, message = duplicate.case_number, "不能把案件并入它自己"
    elif problem == "other_hospital":
        theirs = make_case(institution=zyy)
        theirs.case_number = "TS2026-77777"                     # a number only zyy has
        number, message = theirs.case_number, "本院没有编号为“TS2026-77777”的案件"
    elif problem == "finished":
        triage.decline_complaint(primary_declined := make_case(), DeclineReason.REPEATED, "重复投诉", actor=officer)
        number, message = primary_declined.case_number, "已结束（不予受理）"
    elif problem == "merged_away":
        corrections.merge_case(primary, make_case().case_number, "重复", actor=officer)
        number, message = primary.case_number, "已并入"
    elif problem == "no_reason":
        reason, message = " ", "请写明合并理由"
    elif problem == "has_duplicates":
        corrections.merge_case(make_case(), duplicate.case_number, "重复", actor=officer)
        message = "已有案件并入本案"
    with pytest.raises(ServiceError, match=message) as refused:
        corrections.merge_case(duplicate, number, reason, actor=officer)
    assert refused.value.field == ("reason" if problem == "no_reason" else "primary")
    assert duplicate.merged_into_id is None and duplicate.status == Status.REGISTERED


def test_who_may_merge_and_when(make_case, rmyy, officer, handler):
    primary = handling_case(make_case, rmyy)
    duplicate = handling_case(make_case, rmyy)
    with pytest.raises(NotAllowed):
        corrections.merge_case(duplicate, primary.case_number, "重复", actor=handler)
    with pytest.raises(ConcurrentChange):
        corrections.merge_case(duplicate, primary.case_number, "重复", actor=officer,
                               expected_version=duplicate.version - 1)
    draft = make_case()
    triage.settle_on_the_spot(draft, "当场解释清楚", actor=officer)
    with pytest.raises(NotAllowed, match="当场办结"):                     # a finished case is not merged away
        corrections.merge_case(draft, primary.case_number, "重复", actor=officer)
    corrections.merge_case(duplicate, primary.case_number, "重复", actor=officer)
    with pytest.raises(NotAllowed, match="合并"):                         # once merged, read-only
        corrections.merge_case(duplicate, primary.case_number, "再合并", actor=officer)
    with pytest.raises(NotAllowed, match="合并"):
        corrections.correct_case(duplicate, subject="改", category=duplicate.category, channel=duplicate.channel,
                                 actor=officer)


def test_an_emergency_duplicate_keeps_the_case_it_joins_an_emergency(make_case, rmyy, officer):
    primary = handling_case(make_case, rmyy)
    duplicate = make_case(safety_emergency=True)
    corrections.merge_case(duplicate, primary.case_number, "重复", actor=officer)
    assert primary.safety_emergency and primary.emergency_notified_at == duplicate.emergency_notified_at
    assert events(primary, "emergency")[0].note == f"随 {duplicate.case_number} 并入"


def test_merging_through_the_case_pages(new_client, make_case, rmyy, outbox):
    primary = handling_case(make_case, rmyy, complainant_phone="13600003333")
    duplicate = make_case(complainant_phone="13600003333", attachments=[intake.Upload("收据.png", photo("png"))])
    officer, handler = new_client(), new_client()
    staff_login(officer, "rmyy-officer")
    staff_login(handler, "rmyy-handler")                      # XNK: leads the primary, not the duplicate
    base = f"/i/{rmyy.id}/complaints"
    page = officer.get(f"{base}/{duplicate.id}").get_data(as_text=True)
    assert 'name="merge-primary"' in page and f'<option value="{primary.case_number}">' in page  # a candidate
    data = {"merge-version": duplicate.version, "merge-primary": primary.case_number, "merge-reason": "同一事项"}

    stale = officer.post(f"{base}/{duplicate.id}/merge", data={**data, "merge-version": duplicate.version - 1})
    assert stale.status_code == 409 and "该案件刚被其他人更新" in stale.get_data(as_text=True)
    wrong = officer.post(f"{base}/{duplicate.id}/merge", data={**data, "merge-primary": "TS2099-1"})
    assert wrong.status_code == 400 and "本院没有编号为“TS2099-1”的案件" in wrong.get_data(as_text=True)
    assert handler.post(f"{base}/{duplicate.id}/merge", data=data).status_code == 404   # not the handler's case
    assert officer.post(f"{base}/{duplicate.id}/merge", data=data).status_code == 302
    db.session.refresh(duplicate)
    assert duplicate.status == Status.MERGED

    page = officer.get(f"{base}/{duplicate.id}").get_data(as_text=True)
    assert f"本案已并入 {primary.case_number}" in page and f"/complaints/{primary.id}\"" in page
    assert 'id="actions"' not in page and 'id="corrections"' not in page and 'id="intake"' in page
    assert f"/complaints/{duplicate.id}/rectifications/new" not in page     # nothing more is put on its books
    page = officer.get(f"{base}/{primary.id}").get_data(as_text=True)
    assert f"合并了 {duplicate.case_number}：同一事项" in page and f"/complaints/{duplicate.id}\"" in page
    assert "并入本案的重复投诉" in page and f"来自并入的 {duplicate.case_number}" in page
    assert "收据.png" in page
    again = officer.post(f"{base}/{duplicate.id}/merge", data={**data, "merge-version": duplicate.version})
    assert again.status_code == 409 and "该案件已合并，只能查看" in again.get_data(as_text=True)

    # The primary's handler reads the duplicate and its evidence, and acts on neither.
    (attachment,) = db.session.scalars(select(Attachment).where(Attachment.complaint_id == duplicate.id))
    assert handler.get(f"{base}/{duplicate.id}").status_code == 200
    assert handler.get(f"{base}/attachments/{attachment.id}").status_code == 200
    stranger = new_client()
    staff_login(stranger, "zyy-officer")
    assert stranger.get(f"/i/{rmyy.id}/complaints/attachments/{attachment.id}").status_code == 404
