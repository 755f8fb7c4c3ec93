"""Triage, the clock (pauses, extensions), co-handling answers and the case page (issue 5, points 2-5)."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text

from complaints import cohandling, pauses, routing, triage
from complaints.models import CaseEvent, CasePause, DeadlineRule, DeclineReason, PauseReason, Status
from complaints.workflow import ConcurrentChange, NotAllowed
from core import notify
from core.audit import AuditEntry
from core.extensions import db
from core.services import ServiceError
from organisation.models import Institution
from tests.complaints.conftest import department
from tests.factories import demo_user

BEIJING_1700_0930 = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)  # Wed 2026-09-30 17:00 Beijing (C1)


def beijing(y, m, d, hh=0, mm=0) -> datetime:
    """A Beijing wall-clock time as an aware UTC datetime."""
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture
def c1_case(make_case, calendar_2026):
    """Check C1's case: received Wed 2026-09-30 17:00 Beijing, registered by rmyy-officer."""
    return make_case(received_at=BEIJING_1700_0930)


def audit_actions(case) -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "complaint", AuditEntry.target_id == str(case.id)).order_by(AuditEntry.id)))


def events(case) -> list[str]:
    return list(db.session.scalars(select(CaseEvent.action).where(CaseEvent.complaint_id == case.id)
                                   .order_by(CaseEvent.id)))


# Triage -----------------------------------------------------------------------------

def test_registering_starts_the_clock_from_the_day_after_receipt_across_national_day(c1_case, officer):
    # The clock starts at receipt (民法典 第二百零一条), not when an officer gets round to accepting.
    assert c1_case.status == Status.REGISTERED
    assert c1_case.due_date == date(2026, 10, 13)          # C1: Sat 10-10 is a make-up workday and counts
    assert c1_case.due_at == beijing(2026, 10, 14)          # the end (24:00) of the due day
    assert c1_case.deadline_rule == "standard" and c1_case.working_days == 5
    assert c1_case.deadline_provisional is False
    assert c1_case.deadline_trace["due_date"] == "2026-10-13"
    assert events(c1_case) == ["registered", "deadline_set"]

    triage.accept_complaint(c1_case, actor=officer, expected_version=c1_case.version)
    assert c1_case.status == Status.ACCEPTED
    assert (c1_case.due_date, c1_case.due_at, c1_case.working_days) == (date(2026, 10, 13), beijing(2026, 10, 14), 5)
    assert "complaint.accept" in audit_actions(c1_case)
    assert events(c1_case) == ["registered", "deadline_set", "accept"]  # accepting does not move the deadline


def test_the_officer_who_triages_a_self_service_complaint_becomes_its_first_contact(make_case, officer):
    from complaints.models import Channel

    case = make_case(channel=Channel.SELF_SERVICE, first_contact=None, actor="patient")
    assert case.first_contact_id is None
    triage.accept_complaint(case, actor=officer)
    assert case.first_contact_id == officer.id

    walk_in = make_case(actor=demo_user("rmyy-admin"), first_contact=demo_user("rmyy-admin"))
    triage.decline_complaint(walk_in, DeclineReason.REPEATED, "告知", actor=officer)
    assert walk_in.first_contact.username == "rmyy-admin"          # 首诉负责 is never taken over


def test_accepting_on_a_stale_page_changes_nothing(c1_case, officer):
    stale = c1_case.version
    c1_case.subject = "改了主题"
    db.session.flush()

    with pytest.raises(ConcurrentChange):
        triage.accept_complaint(c1_case, actor=officer, expected_version=stale)
    assert c1_case.status == Status.REGISTERED and c1_case.first_contact.username == "rmyy-officer"


def test_handlers_cannot_triage(c1_case, handler):
    with pytest.raises(NotAllowed):
        triage.accept_complaint(c1_case, actor=handler)


def test_settling_on_the_spot_needs_a_note_and_closes_the_case_as_settled(make_case, officer):
    case = make_case()
    with pytest.raises(ServiceError):
        triage.settle_on_the_spot(case, "  ", actor=officer)
    assert case.status == Status.REGISTERED

    triage.settle_on_the_spot(case, "当场向患者解释医保报销流程，患者表示理解。", actor=officer)
    assert case.status == Status.SETTLED
    assert case.settlement_note.startswith("当场")
    assert case.closed_at is not None and case.resolved is True
    assert "complaint.settle" in audit_actions(case)


def test_declining_requires_the_notice_to_the_complainant(make_case, officer):
    case = make_case()
    with pytest.raises(ServiceError) as error:
        triage.decline_complaint(case, DeclineReason.IN_COURT, "", actor=officer)
    assert error.value.field == "notice"

    notice = triage.default_decline_notice(DeclineReason.IN_COURT)
    triage.decline_complaint(case, DeclineReason.IN_COURT, notice, actor=officer)
    assert case.status == Status.DECLINED
    assert case.decline_reason == "in_court" and "人民法院" in case.decline_notice
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.decline",
                                                       AuditEntry.target_id == str(case.id)))
    assert "13912345678" not in str(entry.data) and "张三" not in str(entry.data)


def test_the_deadline_rule_is_stored_as_before_and_read_back_as_a_labelled_enum(make_case, officer):
    case = make_case()
    triage.accept_complaint(case, actor=officer)
    db.session.flush()
    stored = db.session.scalar(text("SELECT deadline_rule FROM complaint WHERE id = :id"), {"id": case.id})
    assert stored == "standard"
    db.session.expire(case)
    assert case.deadline_rule is DeadlineRule.STANDARD and str(case.deadline_rule.label) == "一般投诉（需调查核实）"


def test_every_decline_reason_has_a_chinese_default_notice():
    for reason in DeclineReason:
        assert len(triage.default_decline_notice(reason)) > 20


def test_the_decline_notice_is_texted_once_and_the_log_backend_never_sees_the_number(make_case, officer, outbox,
                                                                                     app, caplog):
    from complaints import tasks

    case = make_case()
    triage.decline_complaint(case, DeclineReason.REPEATED, "您好，本次投诉未提供新的事实。", actor=officer)
    db.session.flush()

    assert tasks.send_decline_notice(case.id) is True
    assert tasks.send_decline_notice(case.id) is False          # a second run sends nothing
    assert [m.recipients for m in outbox] == [["13912345678"]]
    # Signed like every text to a complainant (【hospital】 first: Chinese SMS gateways require it).
    signature = notify.sms_signature(db.session.get_one(Institution, case.institution_id).display_name)
    assert outbox[0].body == signature + "您好，本次投诉未提供新的事实。"
    assert "decline_notice_sent" in events(case)

    app.config["NOTIFIER_BACKEND"] = "log"
    other = make_case(complainant_phone="13800001111")
    triage.decline_complaint(other, DeclineReason.REPEATED, "告知", actor=officer)
    db.session.flush()
    with caplog.at_level("INFO"):
        assert tasks.send_decline_notice(other.id) is True
    assert "13800001111" not in caplog.text and "138****1111" in caplog.text


# Pauses (check C7) ------------------------------------------------------------------------

def test_a_paused_clock_excludes_the_paused_days_on_resume(make_case, officer, calendar_2026):
    case = make_case(received_at=beijing(2026, 11, 2, 10))           # Mon 11-02, due Mon 11-09
    triage.accept_complaint(case, actor=officer)
    assert case.due_date == date(2026, 11, 9)

    pauses.pause_clock(case, PauseReason.AWAITING_MATERIAL, actor=officer, at=beijing(2026, 11, 4))
    assert case.paused_since == beijing(2026, 11, 4) and case.pause_reason == "awaiting_material"
    with pytest.raises(NotAllowed):
        pauses.pause_clock(case, PauseReason.MEDIATION, actor=officer)

    pauses.resume_clock(case, actor=officer, at=beijing(2026, 11, 9))
    assert case.due_date == date(2026, 11, 12)                          # C7
    assert case.paused_since is None
    assert [(p.started_at, p.ended_at) for p in db.session.scalars(
        select(CasePause).where(CasePause.complaint_id == case.id))] == [(beijing(2026, 11, 4), beijing(2026, 11, 9))]
    assert case.deadline_trace["pauses"] and any(d.get("paused") for d in case.deadline_trace["days"])
    assert {"complaint.pause", "complaint.resume_clock"} <= set(audit_actions(case))
    assert events(case)[-2:] == ["pause", "resume_clock"]


def test_only_officers_pause_the_clock(make_case, officer, handler, calendar_2026):
    case = make_case()
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(case_institution(case), "XNK"), actor=officer)
    with pytest.raises(NotAllowed):
        pauses.pause_clock(case, PauseReason.MEDIATION, actor=handler)
    with pytest.raises(NotAllowed):
        pauses.resume_clock(case, actor=officer)                      # not paused


def case_institution(case):
    return db.session.get(Institution, case.institution_id)


# Extensions ---------------------------------------------------------------------------------

@pytest.fixture
def handled_case(c1_case, officer):
    """C1's case accepted and led by 心血管内科 (rmyy-handler's department)."""
    triage.accept_complaint(c1_case, actor=officer)
    routing.assign_department(c1_case, department(case_institution(c1_case), "XNK"), actor=officer)
    return c1_case


def test_an_extension_needs_a_reason_and_another_officers_approval(handled_case, officer, admin, handler):
    with pytest.raises(ServiceError):
        pauses.request_extension(handled_case, 3, "", actor=handler)
    with pytest.raises(ServiceError):
        pauses.request_extension(handled_case, 0, "需要调取监控", actor=handler)

    ext = pauses.request_extension(handled_case, 3, "需要调取监控录像", actor=officer)
    with pytest.raises(ServiceError):                                     # one pending request at a time
        pauses.request_extension(handled_case, 2, "再延", actor=handler)
    with pytest.raises(NotAllowed):                                       # not the person who asked
        pauses.decide_extension(ext, True, "", actor=officer)
    with pytest.raises(NotAllowed):                                       # not an officer
        pauses.decide_extension(ext, True, "", actor=handler)
    assert handled_case.due_date == date(2026, 10, 13)

    pauses.decide_extension(ext, True, "同意", actor=admin)
    assert ext.status == "approved" and ext.decided_by_id == admin.id
    assert handled_case.due_date == date(2026, 10, 16)                    # 3 more working days
    assert handled_case.deadline_trace["extra_days"] == 3
    assert {"complaint.extension_requested", "complaint.extension_approved"} <= set(audit_actions(handled_case))


def test_a_refused_extension_needs_a_reason_and_keeps_the_due_date(handled_case, handler, officer):
    ext = pauses.request_extension(handled_case, 2, "科室主任出差", actor=handler)
    with pytest.raises(ServiceError):
        pauses.decide_extension(ext, False, "", actor=officer)
    pauses.decide_extension(ext, False, "请先约谈当事人", actor=officer)
    assert ext.status == "rejected"
    assert handled_case.due_date == date(2026, 10, 13)
    assert events(handled_case)[-1] == "extension_rejected"


# Co-handling answers (check C13) ----------------------------------------------------------------

@pytest.fixture
def co_case(c1_case, officer):
    """C1's case led by 心血管内科 with 财务科 and 医务科 co-handling."""
    inst = case_institution(c1_case)
    triage.accept_complaint(c1_case, actor=officer)
    routing.assign_department(c1_case, department(inst, "XNK"), co=[department(inst, "CWK"), department(inst, "YWK")],
                              actor=officer)
    return c1_case


def co_row(case, code):
    return next(cd for cd in cohandling.co_departments(case) if cd.department.code == code)


def test_the_lead_cannot_reply_while_a_co_answer_is_missing_unless_an_officer_waives_it(co_case, handler, officer):
    with pytest.raises(cohandling.NotReady) as missing:
        cohandling.check_ready_to_reply(co_case)
    assert "财务科" in str(missing.value) and "医务科" in str(missing.value)

    cohandling.record_co_answer(co_case, co_row(co_case, "CWK"), "已核对收费明细，多收 20 元，同意退费。",
                                actor=handler)
    with pytest.raises(cohandling.NotReady) as still:
        cohandling.check_ready_to_reply(co_case)
    assert "医务科" in str(still.value) and "财务科" not in str(still.value)

    with pytest.raises(NotAllowed):          # rmyy-handler is not bound to 医务科
        cohandling.record_co_answer(co_case, co_row(co_case, "YWK"), "意见", actor=handler)
    with pytest.raises(NotAllowed):          # only officers waive
        cohandling.waive_co_answer(co_case, co_row(co_case, "YWK"), "医务科人员外出培训", actor=handler)
    with pytest.raises(ServiceError):        # a reason is required
        cohandling.waive_co_answer(co_case, co_row(co_case, "YWK"), " ", actor=officer)
    cohandling.waive_co_answer(co_case, co_row(co_case, "YWK"), "医务科人员外出培训，先行答复", actor=officer)

    assert cohandling.check_ready_to_reply(co_case) is None
    assert {"complaint.co_answer", "complaint.co_waived"} <= set(audit_actions(co_case))


def test_reply_drafting_refuses_while_a_co_answer_is_missing(co_case, handler):
    from complaints import replies

    with pytest.raises(Exception) as refused:
        replies.draft_reply(co_case, "答复草稿", actor=handler)
    assert "协办" in str(refused.value)
    assert co_case.status == Status.IN_HANDLING
