"""Cases can be corrected (issue 10, point 5): readable subjects, replies with blanks, edits, merging duplicates."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from complaints import intake
from complaints import categories as category_service
from complaints.intake import derive_subject
from complaints.models import Complaint
from core.extensions import db
from tests.complaints.conftest import hidden_fields, open_form, staff_login


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
    ("挂号窗口工作人员态度生硬。后来又去了收费处。", "挂号窗口工作人员态度生硬"),        # the whole first sentence: no "…"
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
    from tests.complaints.conftest import post_complaint

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
