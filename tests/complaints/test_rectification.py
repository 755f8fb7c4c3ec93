"""Rectification (整改, 挂账销号) verified by someone else; refunds for price complaints approved by someone else."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from complaints import routing, triage
from complaints.models import Rectification, RectificationStatus, Refund, RefundStatus
from complaints.rectification import (
    RemedyError,
    add_rectification,
    complete_rectification,
    complete_refund,
    decide_refund,
    local_today,
    possible_owners,
    request_refund,
    return_rectification,
    verify_rectification,
)
from complaints.workflow import ConcurrentChange, NotAllowed
from core.audit import AuditEntry
from core.extensions import db
from organisation.models import Role
from tests.complaints.conftest import department, staff_login
from tests.factories import demo_user, login, make_staff


def routed_case(make_case, rmyy, *, lead: str = "XNK", **overrides):
    officer = demo_user("rmyy-officer")
    case = make_case(**overrides)
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, lead), actor=officer)
    db.session.flush()
    return case


def in_a_week() -> date:
    return local_today() + timedelta(days=7)


# Rectification -------------------------------------------------------------------------------

def test_the_owner_completes_and_an_officer_verifies(make_case, rmyy, handler, officer):
    case = routed_case(make_case, rmyy)
    r = add_rectification(case, "组织窗口人员服务礼仪培训", handler, in_a_week(), department(rmyy, "XNK"),
                          actor=handler)
    assert (r.status, r.owner_id, r.institution_id) == (RectificationStatus.OPEN, handler.id, rmyy.id)

    with pytest.raises(RemedyError, match="完成情况"):
        complete_rectification(r, " ", actor=handler)
    complete_rectification(r, "11 月 20 日已培训，签到表存科室。", actor=handler)
    with pytest.raises(NotAllowed):
        verify_rectification(r, actor=handler)  # the owner never closes their own action
    verify_rectification(r, actor=officer)

    assert (r.status, r.verified_by_id) == (RectificationStatus.VERIFIED, officer.id)
    actions = [e.action for e in case.events]
    assert {"rectification_added", "rectification_done", "rectification_verified"} <= set(actions)
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.rectification.verify",
                                                      AuditEntry.target_id == str(case.id))) is not None


def test_whoever_completed_it_cannot_verify_it_either(make_case, rmyy, handler, officer, admin):
    case = routed_case(make_case, rmyy)
    r = add_rectification(case, "更换候诊区座椅", handler, in_a_week(), None, actor=officer)
    complete_rectification(r, "已更换。", actor=officer)  # an officer may report for the owner

    with pytest.raises(NotAllowed, match="以外"):
        verify_rectification(r, actor=officer)
    verify_rectification(r, actor=admin)
    assert r.verified_by_id == admin.id


def test_an_officer_who_owns_an_action_needs_another_officer(make_case, rmyy, officer, admin):
    case = routed_case(make_case, rmyy)
    r = add_rectification(case, "修订投诉接待流程", officer, in_a_week(), None, actor=officer)
    complete_rectification(r, "流程已修订并发布。", actor=officer)
    with pytest.raises(NotAllowed):
        verify_rectification(r, actor=officer)
    verify_rectification(r, actor=admin)
    assert r.status == RectificationStatus.VERIFIED


def test_weak_evidence_goes_back_to_the_owner(make_case, rmyy, handler, officer):
    case = routed_case(make_case, rmyy)
    r = add_rectification(case, "培训", handler, in_a_week(), None, actor=handler)
    complete_rectification(r, "已培训。", actor=handler)
    with pytest.raises(RemedyError):
        return_rectification(r, "", actor=officer)

    return_rectification(r, "请补充签到表。", actor=officer)

    assert (r.status, r.done_at) == (RectificationStatus.OPEN, None)
    complete_rectification(r, "已培训，签到表见附件。", actor=handler)
    assert r.status == RectificationStatus.DONE


def test_a_due_date_in_the_past_and_an_owner_from_elsewhere_are_refused(make_case, rmyy, zyy, handler, officer):
    case = routed_case(make_case, rmyy)
    with pytest.raises(RemedyError, match="期限"):
        add_rectification(case, "培训", handler, local_today() - timedelta(days=1), None, actor=officer)
    with pytest.raises(RemedyError, match="责任人"):
        add_rectification(case, "培训", demo_user("zyy-handler"), in_a_week(), None, actor=officer)
    with pytest.raises(RemedyError, match="责任人"):
        add_rectification(case, "培训", demo_user("rmyy-leader"), in_a_week(), None, actor=officer)
    with pytest.raises(NotAllowed):  # a handler of another department is not the lead
        add_rectification(routed_case(make_case, rmyy, lead="GK"), "培训", handler, in_a_week(), None,
                          actor=handler)


def test_possible_owners_are_the_active_staff_who_may_work_cases_by_name(rmyy, handler, officer):
    retired = make_staff([Role.COMPLAINT_OFFICER], rmyy, display_name="已离职")
    retired.active = False
    owners = possible_owners(rmyy.id)

    assert handler in owners and officer in owners
    assert demo_user("rmyy-leader") not in owners and retired not in owners
    assert all(u.institution_id == rmyy.id for u in owners)
    assert owners == sorted(owners, key=lambda u: (u.display_name, u.username))


@pytest.mark.parametrize("due", ["2026-02-30", "明天", "0001-01-01", "", "2026-13-01"])
def test_a_bad_due_date_on_the_form_is_a_400(make_case, rmyy, handler, client, due):
    case = routed_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/rectifications/new",
                           data={"action": "培训", "owner_id": handler.id, "due_date": due})
    assert response.status_code == 400
    assert db.session.scalars(select(Rectification).where(Rectification.complaint_id == case.id)).all() == []


def test_adding_through_the_page(make_case, rmyy, handler, client):
    case = routed_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    url = f"/i/{rmyy.id}/complaints/{case.id}/rectifications/new"
    assert client.get(url).status_code == 200
    response = client.post(url, data={"action": "完善导诊标识", "owner_id": handler.id,
                                      "department_id": department(rmyy, "XNK").id,
                                      "due_date": in_a_week().isoformat()})
    assert response.status_code in (302, 303)
    r = db.session.scalar(select(Rectification).where(Rectification.complaint_id == case.id))
    assert (r.action, r.owner_id, r.due_date) == ("完善导诊标识", handler.id, in_a_week())


def test_the_list_shows_open_actions_and_marks_overdue_ones(make_case, rmyy, handler, officer, client):
    case = routed_case(make_case, rmyy)
    late = add_rectification(case, "逾期的整改", handler, in_a_week(), None, actor=officer)
    add_rectification(case, "按期的整改", handler, in_a_week(), None, actor=officer)
    closed = add_rectification(case, "已销号的整改", handler, in_a_week(), None, actor=officer)
    complete_rectification(closed, "完成", actor=handler)
    verify_rectification(closed, actor=officer)
    late.due_date = local_today() - timedelta(days=3)
    staff_login(client, "rmyy-leader")

    page = client.get(f"/i/{rmyy.id}/complaints/rectifications")

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "逾期的整改" in html and "按期的整改" in html and "已销号的整改" not in html
    late_row = html[html.index("逾期的整改") - 600:html.index("逾期的整改")]
    assert 'class="oc-overdue"' in late_row and "逾期 3 天" in late_row
    on_time_row = html[html.index("按期的整改") - 600:html.index("按期的整改")]
    assert "oc-overdue" not in on_time_row.split("<tr")[-1]
    assert "已销号的整改" in client.get(f"/i/{rmyy.id}/complaints/rectifications?status=verified").get_data(
        as_text=True)
    assert client.get(f"/i/{rmyy.id}/complaints/rectifications?status=bogus").status_code == 200


def test_a_handler_sees_only_their_own_actions_and_other_hospitals_none(make_case, rmyy, handler, officer, client):
    case = routed_case(make_case, rmyy)
    add_rectification(case, "本人负责的整改", handler, in_a_week(), None, actor=officer)
    add_rectification(case, "别人负责的整改", officer, in_a_week(), department(rmyy, "GK"), actor=officer)
    staff_login(client, "rmyy-handler")
    html = client.get(f"/i/{rmyy.id}/complaints/rectifications").get_data(as_text=True)
    assert "本人负责的整改" in html and "别人负责的整改" not in html

    staff_login(client, "zyy-officer")
    assert client.get(f"/i/{rmyy.id}/complaints/rectifications").status_code in (403, 404)


# Refunds ---------------------------------------------------------------------------------------

def price_case(make_case, rmyy):
    """A 收费价格 complaint routed to CWK 财务科 (rmyy-handler's department)."""
    return routed_case(make_case, rmyy, lead="CWK", category="charges", subject="重复收取检查费")


def test_a_refund_is_approved_by_someone_other_than_the_requester(make_case, rmyy, handler, officer, admin):
    case = price_case(make_case, rmyy)
    refund = request_refund(case, Decimal("128.5"), "CT 检查费重复收取", actor=officer)
    assert (refund.amount, refund.status) == (Decimal("128.50"), RefundStatus.REQUESTED)

    with pytest.raises(NotAllowed, match="申请人以外"):
        decide_refund(refund, True, "", actor=officer)
    with pytest.raises(NotAllowed):
        decide_refund(refund, True, "", actor=handler)  # approval is the complaint office's
    with pytest.raises(RemedyError):
        complete_refund(refund, "TK001", actor=handler)  # not approved yet
    decide_refund(refund, True, "核实属实", actor=admin)
    complete_refund(refund, " TK20261126001 ", actor=handler)  # the finance department pays it out

    assert (refund.status, refund.decided_by_id, refund.payment_ref, refund.completed_by_id) == (
        RefundStatus.COMPLETED, admin.id, "TK20261126001", handler.id)
    assert [e.action for e in case.events][-3:] == ["refund_requested", "refund_approved", "refund_completed"]
    entries = db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == str(case.id),
                                                                 AuditEntry.action.like("complaint.refund.%"))).all()
    assert sorted(entries) == ["complaint.refund.complete", "complaint.refund.decide", "complaint.refund.request"]


def test_of_two_officers_deciding_at_once_only_one_wins(make_case, rmyy, handler, officer, admin):
    case = price_case(make_case, rmyy)
    refund = request_refund(case, Decimal("20"), "多收挂号费", actor=handler)
    # the other officer's approval lands between this officer opening the page and submitting it
    db.session.execute(update(Refund).where(Refund.id == refund.id).values(status=RefundStatus.APPROVED,
                                                                           decided_by_id=admin.id)
                       .execution_options(synchronize_session=False))
    with pytest.raises(ConcurrentChange):
        decide_refund(refund, False, "不属实", actor=officer)
    assert (refund.status, refund.decided_by_id, refund.decision_note) == (RefundStatus.APPROVED, admin.id, "")


def test_refusing_a_refund_needs_a_reason(make_case, rmyy, handler, officer):
    case = price_case(make_case, rmyy)
    refund = request_refund(case, Decimal("20"), "多收挂号费", actor=handler)
    with pytest.raises(RemedyError, match="理由"):
        decide_refund(refund, False, " ", actor=officer)
    decide_refund(refund, False, "挂号费按规定收取，无误。", actor=officer)
    assert refund.status == RefundStatus.REJECTED
    with pytest.raises(RemedyError):
        complete_refund(refund, "TK1", actor=officer)


def test_refunds_are_only_for_price_complaints(make_case, rmyy, officer):
    case = routed_case(make_case, rmyy)  # 服务态度
    with pytest.raises(RemedyError, match="收费价格"):
        request_refund(case, Decimal("10"), "原因", actor=officer)


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-1"), Decimal("1.005"), Decimal("NaN"),
                                    Decimal("Infinity"), Decimal("1e11")])
def test_the_service_refuses_bad_amounts(make_case, rmyy, officer, amount):
    case = price_case(make_case, rmyy)
    with pytest.raises(RemedyError):
        request_refund(case, amount, "原因", actor=officer)


@pytest.mark.parametrize("amount", ["abc", "-5", "0", "0.00", "1.234", "1e5", "99999999999", "", "NaN", "12元"])
def test_a_bad_amount_on_the_form_is_a_400_in_chinese(make_case, rmyy, client, amount):
    case = price_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/refunds/new",
                           data={"amount": amount, "reason": "重复收费"})
    assert response.status_code == 400
    assert "金额" in response.get_data(as_text=True)
    assert db.session.scalars(select(Refund).where(Refund.complaint_id == case.id)).all() == []


@pytest.mark.parametrize("typed, stored", [("128.50", "128.50"), ("￥1,280", "1280.00"), ("0.5", "0.50"),
                                           ("１２．５", "12.50")])
def test_amounts_as_people_type_them(make_case, rmyy, client, typed, stored):
    case = price_case(make_case, rmyy)
    staff_login(client, "rmyy-officer")
    response = client.post(f"/i/{rmyy.id}/complaints/{case.id}/refunds/new",
                           data={"amount": typed, "reason": "重复收费"})
    assert response.status_code in (302, 303)
    assert db.session.scalar(select(Refund.amount).where(Refund.complaint_id == case.id)) == Decimal(stored)


def test_approval_and_completion_through_the_pages(make_case, rmyy, handler, new_client):
    case = price_case(make_case, rmyy)
    refund = request_refund(case, Decimal("56"), "多收药费", actor=handler)
    officer_browser, handler_browser = new_client(), new_client()
    staff_login(officer_browser, "rmyy-officer")
    staff_login(handler_browser, "rmyy-handler")
    base = f"/i/{rmyy.id}/complaints/refunds/{refund.id}"

    assert officer_browser.post(f"{base}/decide", data={"decision": "reject"}).status_code == 400
    refused = handler_browser.post(f"{base}/decide", data={"decision": "approve"})  # only officers approve
    assert refused.status_code == 403 and "只有投诉管理人员可以审批退费" in refused.get_data(as_text=True)
    assert officer_browser.post(f"{base}/decide", data={"decision": "approve"}).status_code in (302, 303)
    assert handler_browser.post(f"{base}/complete", data={"payment_ref": ""}).status_code == 400
    assert handler_browser.post(f"{base}/complete", data={"payment_ref": "TK9"}).status_code in (302, 303)
    db.session.refresh(refund)
    assert (refund.status, refund.payment_ref) == (RefundStatus.COMPLETED, "TK9")


def test_refund_pages_are_not_found_for_handlers_of_other_departments(make_case, rmyy, handler, client):
    case = price_case(make_case, rmyy)
    refund = request_refund(case, Decimal("56"), "多收药费", actor=handler)
    outsider = make_staff([Role.DEPARTMENT_HANDLER], rmyy, departments=[department(rmyy, "EK")])
    login(client, outsider)
    assert client.get(f"/i/{rmyy.id}/complaints/refunds/{refund.id}/complete").status_code == 404
    assert client.get(f"/i/{rmyy.id}/complaints/{case.id}/refunds/new").status_code == 404
