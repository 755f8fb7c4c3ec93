"""Who may see and act on one case: the rules of complaints/access.py, and the pages that follow them."""
from __future__ import annotations

import pytest

from complaints import access
from complaints.models import CaseDepartment
from core.extensions import db
from tests.complaints.conftest import department, staff_login
from tests.factories import demo_user


@pytest.fixture
def routed(rmyy, make_case):
    """Two cases: one led by 财务科 (the demo handler's department), one by 消化内科 (not his)."""
    mine, other = make_case(), make_case()
    mine.lead_department_id = department(rmyy, "CWK").id
    other.lead_department_id = department(rmyy, "XHNK").id
    db.session.flush()
    return mine, other


def test_officers_work_every_case_of_their_hospital_and_no_other(routed):
    mine, other = routed
    for username in ("rmyy-officer", "rmyy-admin"):
        user = demo_user(username)
        assert access.is_officer(user, mine) and access.may_work_case(user, other) and access.may_draft(user, other)
    stranger = demo_user("zyy-officer")
    assert not access.is_officer(stranger, mine) and not access.may_see_case(stranger, mine)


def test_handlers_work_what_their_departments_lead_or_co_handle_and_draft_only_as_lead(rmyy, routed):
    mine, other = routed
    handler = demo_user("rmyy-handler")
    assert access.may_work_case(handler, mine) and access.leads(handler, mine) and access.may_draft(handler, mine)
    assert not access.may_see_case(handler, other) and not access.is_officer(handler, mine)
    db.session.add(CaseDepartment(complaint_id=other.id, department_id=department(rmyy, "CWK").id, role="co",
                                  active=True))
    db.session.flush()
    db.session.refresh(other)
    assert access.may_work_case(handler, other) and not access.may_draft(handler, other)


def test_leadership_reads_the_case_page_and_cannot_open_an_action_page(client, rmyy, routed):
    mine, _other = routed
    leader = demo_user("rmyy-leader")
    assert access.may_see_case(leader, mine) and not access.may_work_case(leader, mine)
    staff_login(client, "rmyy-leader")
    assert client.get(f"/i/{rmyy.id}/complaints/{mine.id}").status_code == 200
    assert client.get(f"/i/{rmyy.id}/complaints/{mine.id}/replies/new").status_code == 403


@pytest.mark.parametrize("username, status", [("rmyy-handler", 404), ("zyy-officer", 404), ("region", 403),
                                              ("rmyy-officer", 200), ("rmyy-leader", 200)])
def test_the_case_page_answers_by_the_same_rules(client, rmyy, routed, username, status):
    _mine, other = routed
    staff_login(client, username)
    assert client.get(f"/i/{rmyy.id}/complaints/{other.id}").status_code == status


# Found by tests/test_access_matrix.py: these steps validated the form before asking who may take them, so a
# handler or leader posting an empty form got "fill in this field" (400) and the officer-only pages opened.
OFFICER_STEPS = [("POST", "accept"), ("POST", "assign"), ("POST", "pause"), ("POST", "resume"), ("POST", "edit"),
                 ("POST", "merge"), ("POST", "co"), ("GET", "close"), ("POST", "close"), ("GET", "decline"),
                 ("POST", "decline"), ("GET", "replies/send"), ("POST", "replies/send")]
LEAD_STEPS = [("POST", "transfer"), ("POST", "receive"), ("POST", "extensions")]


@pytest.mark.parametrize(("method", "step"), OFFICER_STEPS + LEAD_STEPS)
def test_a_leader_is_refused_a_step_before_its_form_is_read(client, rmyy, routed, method, step):
    mine, _other = routed
    staff_login(client, "rmyy-leader")
    response = client.open(f"/i/{rmyy.id}/complaints/{mine.id}/{step}", method=method, data={})
    assert response.status_code == 403, response.status_code


@pytest.mark.parametrize(("method", "step"), OFFICER_STEPS)
def test_a_handler_of_the_lead_department_is_refused_an_officer_step_before_its_form_is_read(
        client, rmyy, routed, method, step):
    mine, _other = routed
    staff_login(client, "rmyy-handler")
    response = client.open(f"/i/{rmyy.id}/complaints/{mine.id}/{step}", method=method, data={})
    assert response.status_code == 403, response.status_code


@pytest.mark.parametrize("path", ["refunds/{refund}/decide", "rectifications/{rectification}/return"])
def test_a_handler_cannot_open_the_officers_decision_pages_of_remedies(client, rmyy, routed, handler, path):
    from datetime import date
    from decimal import Decimal

    from complaints.models.outcomes import Rectification, Refund

    mine, _other = routed
    refund = Refund(complaint_id=mine.id, institution_id=rmyy.id, amount=Decimal("5"), reason="多收",
                    requested_by_id=handler.id)
    rectification = Rectification(complaint_id=mine.id, institution_id=rmyy.id, action="培训", owner_id=handler.id,
                                  due_date=date.today(), status="done", done_by_id=handler.id)
    db.session.add_all([refund, rectification])
    db.session.flush()
    staff_login(client, "rmyy-handler")
    url = f"/i/{rmyy.id}/complaints/" + path.format(refund=refund.id, rectification=rectification.id)
    assert client.get(url).status_code == 403
    assert client.post(url, data={}).status_code == 403
