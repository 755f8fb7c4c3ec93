"""GET never changes data (issue 11, point 5; HTTP's safe methods, ASVS V13).

Every GET rule of the app's URL map is opened by an anonymous visitor and by each staff role of one
hospital, against a hospital that has something on every page: complaints in every status with their
replies, feedback, rectifications and refunds, ratings and alerts, a discharge, a staff survey batch, a
routing rule, an API token, a notification, and a questionnaire whose published version has no draft.
After each request the test asks PostgreSQL how many rows this transaction inserted, updated or deleted
per table (``pg_stat_xact_user_tables``, which counts a write even when it was rolled back) and counts
the audit log: neither may move. The rules come from ``app.url_map``, so a new GET view is walked the day
it is added; one that needs an argument this test cannot fill fails until ``_args`` names it.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, select, text

from complaints import calendar_data, feedback, routing
from complaints import categories as category_service
from complaints.demo import seed_cases
from complaints.models import Attachment, Category, Complaint, Rectification, Refund, Reply, RoutingRule
from core import notify
from core.audit import AuditEntry
from core.clock import local_today
from core.extensions import db
from organisation.models import Department, StaffUser, Touchpoint
from survey import api, discharges, followup, qr, staff_survey, versioning
from survey.demo import seed_responses
from survey.models import RecoveryAlert, SurveyResponse, TouchpointCode
from tests.factories import demo_user, login

USERS = (None, "platform", "region", "rmyy-admin", "rmyy-officer", "rmyy-handler", "rmyy-nurse", "rmyy-leader")
WRITES = text("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables")


def first(stmt):
    return db.session.scalar(stmt.limit(1))


def _world(rmyy) -> dict:
    """Rows for every page of rmyy, made through the services and the demo seeders (rolled back after)."""
    today = local_today()
    calendar_data.seed_from_chinesecalendar([today.year - 1, today.year], actor="test")
    category_service.default_categories(actor="test")
    seed_cases(12, institutions=[rmyy])
    builtin = {t.code: t for t in versioning.install_builtin_templates(actor="test")}
    for touchpoint in db.session.scalars(select(Touchpoint).where(Touchpoint.institution_id == rmyy.id,
                                                                  Touchpoint.active.is_(True))):
        qr.ensure_code(touchpoint, actor="test")
    seed_responses(days=2, per_touchpoint_per_day=(1, 2))
    admin = demo_user("rmyy-admin")
    # A questionnaire of the hospital's own whose published version has no draft: its editor must not make one.
    own = versioning.copy_template(builtin["WIN"], rmyy, code="WIN_GET", name="本院窗口", actor="test")
    versioning.publish_version(own.draft, actor="test")
    ward = first(select(Touchpoint).where(Touchpoint.institution_id == rmyy.id, Touchpoint.kind == "ward"))
    settings = followup.followup_settings(rmyy.id)
    data, errors = discharges.check_discharge(
        {"unit": ward.code, "discharge_date": today.isoformat(), "patient_name": "王五", "phone": "13800138000",
         "ref": "ZY-GET-1"}, discharges.Units.load(rmyy), settings, today=today)
    assert not errors, errors
    discharge, _status = discharges.create_discharge(rmyy, data, source="upload", actor="test")
    department = first(select(Department).where(Department.institution_id == rmyy.id).order_by(Department.id))
    batch = staff_survey.create_batch(rmyy, department, builtin["STF"], 2, actor=admin)
    api.create_api_token(rmyy, name="HIS", actor=admin)
    category = first(select(Category).where(Category.institution_id.is_(None)).order_by(Category.id))
    routing.create_routing_rule(rmyy, priority=10, category_id=category.id, touchpoint_id=None, department_id=None,
                                keywords="", target_department_id=department.id, actor=admin)
    category_service.create_category(rmyy, name="停车服务", actor=admin)
    # A closed case with a sent reply, and a satisfaction link waiting for its answer.
    case = first(select(Complaint).join(Reply, Reply.complaint_id == Complaint.id)
                 .where(Complaint.institution_id == rmyy.id, Complaint.status == "closed").order_by(Complaint.id))
    pending = feedback.open_feedback(case, actor="test")
    officer = demo_user("rmyy-officer")
    db.session.add_all([
        Attachment(complaint_id=case.id, filename="a.pdf", content_type="application/pdf", size=4, data=b"%PDF"),
        Refund(complaint_id=case.id, institution_id=rmyy.id, amount=12, reason="多收挂号费",
               requested_by_id=officer.id),
        Rectification(complaint_id=case.id, institution_id=rmyy.id, action="窗口增设引导员", owner_id=officer.id,
                      due_date=today),
    ])
    for username in USERS[1:]:
        notify.send(notify.Message(recipients=[username], subject="测试通知", body="", kind="complaint_assigned",
                                   link="/", key=f"get-safe:{username}"))
    db.session.flush()
    return {"own_template": own, "discharge": discharge, "batch": batch, "case": case, "feedback": pending}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _args(rmyy, world) -> dict:
    """A value for each URL argument: an object of rmyy (or of the user's own) that the page can show."""
    case = world["case"]
    touchpoint = db.session.get(Touchpoint, first(select(TouchpointCode.touchpoint_id).where(
        TouchpointCode.institution_id == rmyy.id, TouchpointCode.retired_at.is_(None)).order_by(TouchpointCode.id)))

    def of(model, *where, order=None):
        return first(select(model.id).where(*where).order_by(order if order is not None else model.id))

    return {
        "institution_id": rmyy.id,
        "region_id": rmyy.region_id,
        "case_id": case.id,
        "reply_id": of(Reply, Reply.complaint_id == case.id),
        "feedback_id": world["feedback"].id,
        "attachment_id": of(Attachment, Attachment.complaint_id == case.id),
        "category_id": of(Category, Category.institution_id == rmyy.id),
        "rectification_id": of(Rectification, Rectification.institution_id == rmyy.id),
        "refund_id": of(Refund, Refund.institution_id == rmyy.id),
        "rule_id": of(RoutingRule, RoutingRule.institution_id == rmyy.id),
        "department_id": touchpoint.department_id,  # one with QR codes to print
        "touchpoint_id": touchpoint.id,
        "staff_id": {"org.platform_staff_edit": of(StaffUser, StaffUser.institution_id.is_(None)),
                     "org.staff_edit": of(StaffUser, StaffUser.institution_id == rmyy.id)},
        "alert_id": of(RecoveryAlert, RecoveryAlert.institution_id == rmyy.id),
        "response_id": of(SurveyResponse, SurveyResponse.institution_id == rmyy.id),
        "discharge_id": world["discharge"].id,
        "batch_id": world["batch"].id,
        "template_id": world["own_template"].id,
        "version_id": world["own_template"].published.id,
        "year": local_today().year,
        "fmt": "csv",
        "kind": {"org.import_template": "departments", "survey_staff.code_image": "svg",
                 "survey_staff.code_print": "poster", "survey_staff.department_print": "poster"},
        "code": "zh_Hans",
        "filename": "css/staff.css",
    }


def _url(rule, args: dict, world: dict) -> str:
    """The URL of a rule; pages whose argument is a token get the link the app itself hands out."""
    endpoint = rule.endpoint
    if endpoint == "patient.touchpoint_survey":
        code = first(select(TouchpointCode).where(TouchpointCode.retired_at.is_(None),
                                                  TouchpointCode.institution_id == args["institution_id"]))
        return _path(qr.patient_url(code))
    if endpoint == "patient.discharge_survey":
        return _path(discharges.discharge_link_url(world["discharge"]))
    if endpoint == "patient.staff_survey":
        return _path(staff_survey.batch_urls(world["batch"])[0])
    if endpoint == "complaints.feedback":
        return _path(feedback.feedback_url(world["feedback"]))
    if endpoint == "patient.thanks":
        submission = first(select(SurveyResponse.submission_id)
                           .where(SurveyResponse.institution_id == args["institution_id"]))
        return url_for(endpoint, submission_id=submission)
    values = {}
    for name in rule.arguments:
        if name not in args:
            pytest.fail(f"{endpoint} takes <{name}>: tell this test what to put there (_args)")
        value = args[name]
        values[name] = value[endpoint] if isinstance(value, dict) else value
    return url_for(endpoint, **values)


def _writes() -> dict[str, int]:
    return dict(db.session.execute(WRITES).all())


@pytest.fixture
def world(ctx, rmyy):
    return _world(rmyy)


def test_no_get_request_of_any_role_writes_a_row_or_an_audit_entry(app, ctx, rmyy, world, new_client):
    args = _args(rmyy, world)
    rules = sorted((r for r in app.url_map.iter_rules() if "GET" in r.methods), key=lambda r: r.rule)
    assert len(rules) > 90  # the walk covers the app, not a handful of pages
    found: list[str] = []
    answered: dict[int, int] = {}
    for username in USERS:
        user = demo_user(username) if username else None
        browser = new_client()
        if user is not None:
            login(browser, user)
        for rule in rules:
            url = _url(rule, args, world)
            db.session.commit()  # the setup, so that only the request's own writes are counted
            audit_before = db.session.scalar(select(func.count()).select_from(AuditEntry))
            before = _writes()
            response = browser.get(url)
            answered[response.status_code] = answered.get(response.status_code, 0) + 1
            after = _writes()
            changed = sorted(t for t in after if after[t] != before.get(t, 0))
            audit_after = db.session.scalar(select(func.count()).select_from(AuditEntry))
            if changed or audit_after != audit_before:
                found.append(f"GET {url} as {username or 'anonymous'} ({response.status_code}) wrote to "
                             f"{', '.join(changed) or 'the audit log'}")
            assert response.status_code < 500, f"GET {url} as {username}: {response.status_code}"
    assert not found, "\n".join(found)
    assert answered.get(200, 0) > 300, answered  # most pages really rendered, for someone


def test_the_walk_sees_a_write_on_a_get(app, ctx, rmyy, world, client, monkeypatch):
    """The control: a GET view that writes is caught (so the walk above can fail)."""
    def leaky(institution_id: int):
        versioning.start_draft(world["own_template"], actor=demo_user("rmyy-admin"))
        db.session.commit()
        return "ok"

    monkeypatch.setitem(app.view_functions, "survey_staff.templates", leaky)
    login(client, demo_user("rmyy-admin"))
    db.session.commit()
    before = _writes()
    client.get(f"/i/{rmyy.id}/survey/templates")
    after = _writes()
    assert {t for t in after if after[t] != before.get(t, 0)} >= {"survey_template_version", "audit_entry"}
