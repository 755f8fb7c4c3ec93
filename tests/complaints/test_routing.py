"""Routing: rules propose the department, assigning with co-handlers, transfers, first-contact responsibility."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from complaints import routing, triage
from complaints.models import RoutingRule, Status
from complaints.workflow import NotAllowed
from core.audit import AuditEntry
from core.extensions import db
from core.services import ServiceError
from tests.complaints.conftest import department, staff_login, touchpoint
from tests.factories import demo_user

C1_RECEIVED = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)  # Wed 2026-09-30 17:00 Beijing


@pytest.fixture
def accepted(make_case, calendar_2026, officer):
    """C1's case, accepted (due 2026-10-13 on the 5-day rule)."""
    case = make_case(received_at=C1_RECEIVED, subject="心内科病房夜间噪音",
                     description="病房夜间有人大声喧哗，护士未制止。")
    triage.accept_complaint(case, actor=officer)
    return case


def rule(institution, target, **values) -> RoutingRule:
    values.setdefault("priority", 100)
    for key in ("category_id", "touchpoint_id", "department_id"):
        values.setdefault(key, None)
    values.setdefault("keywords", "")
    return routing.create_routing_rule(institution, target_department_id=target.id, actor="test", **values)


# Proposing -----------------------------------------------------------------------------

def test_the_first_matching_rule_by_priority_proposes_the_department(rmyy, make_case, categories):
    charges = categories["charges"]
    rule(rmyy, department(rmyy, "YWK"), priority=50, keywords="手术；误诊")
    rule(rmyy, department(rmyy, "CWK"), priority=20, category_id=charges.id)
    rule(rmyy, department(rmyy, "ZWK"), priority=10, category_id=charges.id, keywords="停车")
    case = make_case(category="charges", subject="多收了检查费", description="CT 检查费用重复收取")

    proposal = routing.propose(case)
    assert proposal.department.code == "CWK"                # the priority-10 rule needs 停车 as well
    assert proposal.rule.priority == 20
    assert routing.propose(make_case(subject="手术后伤口感染", description="术后换药不规范")).department.code == "YWK"


def test_rules_can_match_on_touchpoint_and_a_department_concerned(rmyy, make_case):
    rule(rmyy, department(rmyy, "RYGL"), touchpoint_id=touchpoint(rmyy, "D-CY-01").id)
    rule(rmyy, department(rmyy, "HLB"), department_id=department(rmyy, "XNK").id)

    assert routing.propose(make_case(touchpoint="D-CY-01")).department.code == "RYGL"
    assert routing.propose(make_case(departments_concerned=["XNK"])).department.code == "HLB"


def test_without_a_rule_the_touchpoints_department_is_proposed(rmyy, make_case):
    assert routing.propose(make_case(touchpoint="W-GH-01")).department.code == "CWK"
    assert routing.propose(make_case(departments_concerned=["GK"])).department.code == "GK"
    assert routing.propose(make_case()).department is None


def test_an_inactive_rule_proposes_nothing_and_keywords_are_case_insensitive(rmyy, make_case):
    off = rule(rmyy, department(rmyy, "BWK"), keywords="ATM")
    assert routing.propose(make_case(subject="大厅 atm 机吞卡")).department.code == "BWK"
    routing.set_routing_rule_active(off, False, actor="test")
    assert routing.propose(make_case(subject="大厅 atm 机吞卡")).department is None


def test_a_rule_cannot_target_another_institutions_department(rmyy, zyy):
    with pytest.raises(ServiceError) as error:
        rule(rmyy, department(zyy, "CWK"))
    assert error.value.field == "target_department_id"


# Assigning --------------------------------------------------------------------------------

def test_assigning_a_lead_keeps_the_five_day_rule(accepted, rmyy, officer):
    routing.assign_department(accepted, department(rmyy, "XNK"), actor=officer, expected_version=accepted.version)
    assert accepted.status == Status.IN_HANDLING
    assert accepted.lead_department.code == "XNK"
    assert [(cd.department.code, cd.role) for cd in accepted.departments] == [("XNK", "lead")]
    assert accepted.due_date == date(2026, 10, 13)


def test_co_handlers_switch_the_case_to_the_ten_day_rule_with_sub_deadlines(accepted, rmyy, officer):
    routing.assign_department(accepted, department(rmyy, "XNK"),
                              co=[department(rmyy, "CWK"), department(rmyy, "XNK"), department(rmyy, "HLB")],
                              actor=officer)

    assert accepted.deadline_rule == "complex" and accepted.working_days == 10
    assert accepted.due_date == date(2026, 10, 20)                     # C2, counted from the receipt
    rows = {cd.department.code: cd for cd in accepted.departments}
    assert {code: cd.role for code, cd in rows.items()} == {"XNK": "lead", "CWK": "co", "HLB": "co"}
    # Two working days before the case's deadline: 10-16 (Fri), due at 24:00 Beijing.
    assert rows["CWK"].due_at == datetime(2026, 10, 16, 16, 0, tzinfo=UTC)
    assert rows["XNK"].due_at is None


def test_adding_a_co_handler_later_recomputes_from_the_receipt(accepted, rmyy, officer):
    routing.assign_department(accepted, department(rmyy, "XNK"), actor=officer)
    routing.add_co_department(accepted, department(rmyy, "CWK"), actor=officer)
    assert accepted.due_date == date(2026, 10, 20)
    with pytest.raises(ServiceError):
        routing.add_co_department(accepted, department(rmyy, "CWK"), actor=officer)


def test_assigning_to_another_institutions_department_is_refused(accepted, zyy, officer):
    with pytest.raises(ServiceError):
        routing.assign_department(accepted, department(zyy, "CWK"), actor=officer)
    assert accepted.status == Status.ACCEPTED


# Transfers and first-contact responsibility ------------------------------------------------------

def test_a_transfer_needs_a_reason_and_the_new_lead_receives_it(accepted, rmyy, officer):
    handler = demo_user("rmyy-handler")                                 # bound to XNK and CWK
    routing.assign_department(accepted, department(rmyy, "XNK"), actor=officer)
    with pytest.raises(ServiceError):
        routing.transfer_complaint(accepted, department(rmyy, "CWK"), "  ", actor=handler)

    # The reason is cleaned as every text box is (core.services.clean_text): outer blanks off, line ends unified.
    routing.transfer_complaint(accepted, department(rmyy, "CWK"), " 涉及收费问题，\r\n应由财务科主办 ", actor=handler)
    assert accepted.status == Status.TRANSFERRED
    assert accepted.events[-1].note.endswith("：涉及收费问题，\n应由财务科主办")
    assert accepted.lead_department.code == "CWK"
    assert accepted.first_contact.username == "rmyy-officer"             # 首诉负责 stays
    rows = {cd.department.code: (cd.role, cd.active) for cd in accepted.departments}
    assert rows == {"XNK": ("lead", False), "CWK": ("lead", True)}
    assert accepted.due_date == date(2026, 10, 13)                      # a transfer does not restart the clock

    routing.receive_transfer(accepted, actor=handler)
    assert accepted.status == Status.IN_HANDLING
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.transfer",
                                                       AuditEntry.target_id == str(accepted.id)))
    assert "涉及收费问题" in entry.data["note"]


def test_a_handler_of_another_department_cannot_transfer(accepted, rmyy, officer):
    routing.assign_department(accepted, department(rmyy, "GK"), actor=officer)
    with pytest.raises(NotAllowed):
        routing.transfer_complaint(accepted, department(rmyy, "XNK"), "不归我们", actor=demo_user("rmyy-handler"))


# Routing rule pages ----------------------------------------------------------------------------

def test_officers_manage_routing_rules_through_the_pages(client, rmyy, categories):
    staff_login(client, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/routing"
    assert client.get(base).status_code == 200
    bad = client.post(f"{base}/new", data={"priority": "10", "keywords": "退费", "target_department_id": ""})
    assert bad.status_code == 400 and "请选择科室" in bad.get_data(as_text=True)

    ok = client.post(f"{base}/new", data={"priority": "10", "keywords": "退费, 多收", "category_id": "",
                                          "touchpoint_id": "", "department_id": "",
                                          "target_department_id": str(department(rmyy, "CWK").id)})
    assert ok.status_code == 302
    created = db.session.scalar(select(RoutingRule).where(RoutingRule.institution_id == rmyy.id))
    assert created.keywords == "退费;多收" and created.active
    page = client.get(base).get_data(as_text=True)
    assert "退费、多收" in page and "财务科" in page

    assert client.post(f"{base}/{created.id}/toggle").status_code == 302
    db.session.refresh(created)
    assert created.active is False
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.target_type == "complaint_routing_rule")
                             .order_by(AuditEntry.id.desc()).limit(1)) == "routing_rule.deactivate"


def test_handlers_and_other_hospitals_cannot_open_the_routing_rules(client, rmyy, zyy):
    staff_login(client, "rmyy-handler")
    assert client.get(f"/i/{rmyy.id}/complaints/routing").status_code == 403
    staff_login(client, "zyy-officer")
    assert client.get(f"/i/{rmyy.id}/complaints/routing").status_code == 404
    rule_row = rule(rmyy, department(rmyy, "CWK"))
    assert client.get(f"/i/{zyy.id}/complaints/routing/{rule_row.id}").status_code == 404
