"""Every complaint route, probed: one hospital never reaches another's complaints, and bad input never makes a 500.

The routes are enumerated from ``app.url_map`` (blueprints complaints_staff, complaints_admin
and the public complaints pages), so a route added later is probed without editing this file.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from complaints import categories as category_service
from complaints.models import Attachment, CaseDepartment, Complaint, Extension
from complaints.models.outcomes import Feedback, Rectification, Refund, Reply
from core.extensions import db
from tests.complaints.conftest import department, staff_login
from tests.factories import demo_institution, demo_user

A_USERS = ("rmyy-officer", "rmyy-admin", "rmyy-handler", "rmyy-leader", "rmyy-nurse")
STAFF_BLUEPRINTS = ("complaints_staff", "complaints_admin")
ALL_BLUEPRINTS = STAFF_BLUEPRINTS + ("complaints",)
# The working-day calendar is platform-wide reference data, not a hospital's: the calendar
# pages may be read by institution admins and officers, but must never show a hospital's case.
SHARED_READ = {"complaints_admin.calendar_years", "complaints_admin.calendar_year"}
BEYOND_INT4 = 2 ** 31 + 7
CJK = re.compile(r"[\u4e00-\u9fff]")
# Over every length limit of the complaint forms and services (the longest is 8,000 characters), with room
# to spare, in each of the two dozen fields of _plausible_form. Posted as multipart/form-data: percent-encoding
# megabytes (test client) and decoding them (werkzeug, in pure Python) would cost seconds per route and test
# nothing more. Much longer and the body passes MAX_CONTENT_LENGTH: a 413 that never reaches the form.
HUGE = "投" * 20_000

CHILD_MODELS = {
    "row_id": CaseDepartment, "extension_id": Extension, "reply_id": Reply, "feedback_id": Feedback,
    "attachment_id": Attachment, "rectification_id": Rectification, "refund_id": Refund,
}


def _rules(app, blueprints):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in blueprints]
    assert rules, blueprints
    return sorted(rules, key=lambda r: r.rule)


def _methods(rule) -> list[str]:
    return sorted(rule.methods & {"GET", "POST"})


def _fill(rule, ids: dict) -> str:
    values = {name: ids[name] for name in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def _plausible_form(ids: dict, text: str = "理由说明") -> dict:
    """Fields a handler might accept, so that a view missing its tenant check would succeed."""
    fields = {name: text for name in (
        "reason", "note", "summary", "body", "content", "text", "name", "subject", "description", "wish",
        "keywords", "answer", "comment", "plan", "result", "outcome", "opinion", "message", "complainant_name",
        "measures", "findings", "refuse_reason", "return_reason", "decision_note")}
    fields.update({"version": str(ids.get("version", 1)), "expected_version": str(ids.get("version", 1)),
                   "department": str(ids.get("department", "")), "department_id": str(ids.get("department", "")),
                   "lead": str(ids.get("department", "")), "target_department_id": str(ids.get("department", "")),
                   "decision": "approve", "approve": "1", "satisfied": "1", "amount": "10", "days": "5",
                   "priority": "1", "channel": "walk_in", "received": "2026-03-02", "day": "2026-10-01",
                   "kind": "holiday", "submission_id": "review-probe-0001"})
    return fields


def _b_world(make_case):
    """Institution B (zyy) with one case, its rows, its own category and routing rule."""
    from complaints import routing

    zyy = demo_institution("zyy")
    case = make_case(institution=zyy, subject="中医院专属投诉")
    officer = demo_user("zyy-officer")
    zynk = department(zyy, "ZYNK")
    db.session.commit()
    try:
        with db.session.begin_nested():
            routing.assign_department(case, zynk, actor=officer)
    except Exception:  # the assignment only adds a CaseDepartment row when the workflow allows it
        db.session.expire_all()
    category = category_service.create_category(zyy, name="中医院自设类别", actor=officer)
    rule = routing.create_routing_rule(zyy, priority=1, category_id=None, touchpoint_id=None, department_id=None,
                                       keywords="针灸", target_department_id=zynk.id, actor=officer)
    db.session.commit()
    ids = {"institution_id": zyy.id, "case_id": case.id, "complaint_id": case.id, "category_id": category.id,
           "rule_id": rule.id, "alert_id": case.id, "region_id": zyy.region_id, "fmt": "csv", "year": 2026,
           "day": "2026-10-01", "token": "x" * 32, "department": zynk.id, "version": case.version}
    for name, model in CHILD_MODELS.items():
        row_id = db.session.scalar(select(model.id).where(model.complaint_id == case.id).limit(1))
        ids[name] = row_id or case.id
    try:
        from survey.models import RecoveryAlert
        alert = db.session.scalar(select(RecoveryAlert.id).where(RecoveryAlert.institution_id == zyy.id).limit(1))
        ids["alert_id"] = alert or case.id
    except ImportError:  # pragma: no cover
        pass
    return zyy, case, ids


def _state(case_id: int):
    db.session.expire_all()
    row = db.session.execute(select(Complaint.status, Complaint.version, Complaint.institution_id)
                             .where(Complaint.id == case_id)).one()
    return tuple(row)


def test_no_user_of_hospital_a_reaches_any_complaint_route_with_hospital_b_ids(app, client, make_case):
    zyy, case, b_ids = _b_world(make_case)
    rmyy = demo_institution("rmyy")
    before = _state(case.id)
    number = case.case_number
    # Control: the URLs built here do reach B's case for B's own officer, so the refusals below mean something.
    staff_login(client, "zyy-officer")
    own = client.get(_fill(app.url_map._rules_by_endpoint["complaints_staff.case"][0], b_ids))
    assert own.status_code == 200 and number in own.get_data(as_text=True)
    problems: list[str] = []
    probes = 0
    for username in A_USERS:
        staff_login(client, username)
        for rule in _rules(app, STAFF_BLUEPRINTS):
            variants = [dict(b_ids)]
            # A's own institution in the URL with B's case or child ids: the scoped look-up must still refuse.
            if "institution_id" in rule.arguments and len(rule.arguments - {"institution_id", "fmt"}) > 0:
                variants.append(dict(b_ids, institution_id=rmyy.id))
            for ids in variants:
                url = _fill(rule, ids)
                for method in _methods(rule):
                    probes += 1
                    try:
                        if method == "GET":
                            response = client.get(url)
                        else:
                            response = client.post(url, data=_plausible_form(ids))
                    except Exception as exc:  # propagated 500
                        problems.append(f"{username} {method} {url}: exception {exc!r}")
                        db.session.rollback()
                        continue
                    body = response.get_data(as_text=True)
                    shared = rule.endpoint in SHARED_READ and method == "GET" and response.status_code == 200
                    if response.status_code not in (403, 404) and not shared:
                        problems.append(f"{username} {method} {url}: {response.status_code}")
                    if number in body:
                        problems.append(f"{username} {method} {url}: B's case number in body")
                    if _state(case.id) != before:
                        problems.append(f"{username} {method} {url}: B's case changed {before} -> {_state(case.id)}")
                        before = _state(case.id)
    assert probes > 5 * 50, probes
    assert not problems, "\n".join(problems)


def _a_world(make_case):
    rmyy = demo_institution("rmyy")
    case = make_case()
    db.session.commit()
    ids = {"institution_id": rmyy.id, "case_id": case.id, "complaint_id": case.id, "category_id": case.category_id,
           "rule_id": 1, "alert_id": 1, "region_id": rmyy.region_id, "fmt": "csv", "year": 2026,
           "day": "2026-10-01", "token": "not-a-real-token", "department": "", "version": case.version}
    for name, model in CHILD_MODELS.items():
        row_id = db.session.scalar(select(model.id).where(model.complaint_id == case.id).limit(1))
        ids[name] = row_id or 1
    return rmyy, case, ids


def _check(problems: list[str], client, method: str, url: str, **kwargs):
    try:
        response = client.open(url, method=method, **kwargs)
    except Exception as exc:  # the testing app propagates what would be a 500
        problems.append(f"{method} {url[:160]}: exception {type(exc).__name__}: {str(exc)[:200]}")
        db.session.rollback()
        return None
    if response.status_code >= 500:
        problems.append(f"{method} {url[:160]}: {response.status_code}")
    elif 400 <= response.status_code < 500 and response.status_code != 413:
        body = response.get_data(as_text=True)
        if not CJK.search(body):
            problems.append(f"{method} {url[:160]}: {response.status_code} without a Chinese message")
    return response


BAD_QUERIES = ["page=-1", "page=abc", "page=99999999999999999999", "due_within=x", "due_within=-5",
               "status=nonsense", "period=2026-13", "period=abcd", "period=", "date_from=2026-02-30",
               "date_to=abc", "department=abc", "department=99999999999", "category=abc", "channel=zzz",
               "q=" + "x" * 5000, "sort=drop", "overdue=maybe", "region=abc"]


@pytest.mark.parametrize("username", ["rmyy-officer", "rmyy-admin", "platform"])
def test_bad_input_on_any_complaint_route_gets_a_4xx_or_a_page_never_a_500(app, client, make_case, username):
    rmyy, case, ids = _a_world(make_case)
    staff_login(client, username)
    problems: list[str] = []
    for rule in _rules(app, ALL_BLUEPRINTS):
        methods = _methods(rule)
        url = _fill(rule, ids)
        # ids beyond PostgreSQL's int4
        int_args = [a for a in rule.arguments if a not in ("fmt", "day", "token")]
        for arg in int_args:
            big = _fill(rule, dict(ids, **{arg: BEYOND_INT4}))
            for method in methods:
                _check(problems, client, method, big, data={})
        if "GET" in methods:
            for query in BAD_QUERIES:
                _check(problems, client, "GET", f"{url}?{query}")
        if "POST" in methods:
            _check(problems, client, "POST", url, data={})
            _check(problems, client, "POST", url, data={"version": "abc", "expected_version": "-1",
                                                        "department": "abc", "amount": "abc", "days": "x"})
            long_text = _check(problems, client, "POST", url, data=_plausible_form(ids, HUGE),
                               content_type="multipart/form-data")
            if long_text is not None and long_text.status_code == 413:
                problems.append(f"POST {url}: 413, the long-text probe never reached the form")
    assert not problems, "\n".join(problems)


def test_public_complaint_pages_survive_bad_input(app, client, make_case):
    rmyy, case, _ids = _a_world(make_case)
    problems: list[str] = []
    for url in (f"/c/{BEYOND_INT4}/new", "/c/99999999999999999999/new", "/c/lookup?institution=abc",
                "/c/lookup?institution_id=" + str(BEYOND_INT4), "/c/feedback/" + "x" * 5000, "/c/feedback/%00"):
        for method in ("GET", "POST"):
            _check(problems, client, method, url, data={})
    _check(problems, client, "POST", "/c/lookup",
           data={"institution_id": str(BEYOND_INT4), "case_number": "x" * 100_000, "code": "x" * 100_000})
    _check(problems, client, "POST", "/c/lookup", data={"institution_id": "abc", "case_number": "", "code": ""})
    _check(problems, client, "POST", f"/c/{rmyy.id}/new",
           data={"subject": HUGE, "description": HUGE, "wish": HUGE, "complainant_name": HUGE,
                 "complainant_phone": HUGE, "category": "abc", "touchpoint": str(BEYOND_INT4),
                 "submission_id": HUGE})
    _check(problems, client, "POST", f"/c/{rmyy.id}/new", data={"category": str(BEYOND_INT4)})
    assert not problems, "\n".join(problems)
