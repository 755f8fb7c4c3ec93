"""No page is cached: every staff page (found from the URL map: every GET route that sends an anonymous
visitor to the login page) and every public page answers ``Cache-Control: no-store``; static files do not."""
from __future__ import annotations

import re

import pytest
from flask import url_for
from sqlalchemy import select

from complaints.models import (
    Attachment,
    Category,
    Complaint,
    Extension,
    Feedback,
    Rectification,
    Refund,
    Reply,
    RoutingRule,
)
from core.extensions import db
from organisation.models import Department, Notification, StaffUser, Touchpoint
from survey.models import RecoveryAlert, SurveyResponse, SurveyTemplate, TemplateVersion
from tests.factories import demo_institution, demo_user, login

# The row a route argument names, taken from the demo hospital (a child of a case brings its case along).
ARG_MODELS = {
    "case_id": Complaint, "complaint_id": Complaint, "touchpoint_id": Touchpoint, "department_id": Department,
    "template_id": SurveyTemplate, "version_id": TemplateVersion, "reply_id": Reply, "feedback_id": Feedback,
    "rectification_id": Rectification, "refund_id": Refund, "extension_id": Extension,
    "attachment_id": Attachment, "alert_id": RecoveryAlert, "response_id": SurveyResponse, "rule_id": RoutingRule,
    "category_id": Category, "notification_id": Notification,
}
FIXED = {"year": 2026, "fmt": "csv", "day": "2026-10-01"}


def _row_id(model, institution_id: int):
    stmt = select(model)
    if hasattr(model, "institution_id"):
        stmt = stmt.where(model.institution_id == institution_id)
    elif hasattr(model, "complaint_id"):
        stmt = stmt.join(Complaint, Complaint.id == model.complaint_id).where(
            Complaint.institution_id == institution_id)
    return db.session.scalars(stmt.order_by(model.id).limit(1)).first()


def _url(rule, institution_id: int, region_user: StaffUser) -> str:
    args: dict = {}
    for name in sorted(rule.arguments, key=lambda n: n == "case_id"):  # a case's child decides the case
        if name in args:
            continue
        if name == "institution_id":
            args[name] = institution_id
        elif name == "staff_id":
            args[name] = (demo_user("rmyy-nurse") if "institution_id" in rule.arguments else region_user).id
        elif name == "region_id":
            args[name] = demo_institution("rmyy").region_id
        elif name in FIXED:
            args[name] = FIXED[name]
        elif name in ARG_MODELS:
            row = _row_id(ARG_MODELS[name], institution_id)
            args[name] = row.id if row is not None else 1
            if row is not None and hasattr(row, "complaint_id"):
                args.setdefault("case_id", row.complaint_id)
            if row is not None and hasattr(row, "template_id"):
                args.setdefault("template_id", row.template_id)
        elif getattr(rule._converters[name], "num_convert", None) is int:
            args[name] = 1  # no such row in the demo: the page's 404 must not be cached either
        else:
            choices = re.search(rf"<any\(([^)]*)\):{name}>", rule.rule)
            args[name] = choices.group(1).split(",")[0].strip("'\" ") if choices else "x"
    return url_for(rule.endpoint, **args)


@pytest.fixture
def hospital_rows(ctx):
    """Rows for the walk to open: questionnaires, a QR code, a day of ratings with an alert, and a case with the
    complainant's phone (the demo loaded by the test run holds only the organisation)."""
    import uuid
    from datetime import UTC, datetime

    from complaints.categories import default_categories
    from complaints.intake import register_complaint
    from complaints.models import Channel
    from survey import demo, qr, versioning

    rmyy = demo_institution("rmyy")
    versioning.install_builtin_templates(actor="test")
    window = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == rmyy.id,
                                                        Touchpoint.code == "W-GH-01"))
    qr.ensure_code(window, actor="test")
    demo.seed_responses(days=1, per_touchpoint_per_day=(6, 8))
    categories = {c.code: c for c in default_categories(actor="test")}
    officer = demo_user("rmyy-officer")
    register_complaint(rmyy, category=categories["attitude"], touchpoint=window, departments_concerned=[],
                       actor=officer, channel=Channel.WALK_IN, received_at=datetime.now(UTC), subject="态度生硬",
                       description="工作人员态度生硬。", wish="改进。", complainant_name="张三",
                       complainant_phone="13912345678", first_contact=officer, submission_id=uuid.uuid4().hex)
    db.session.flush()


def test_every_staff_page_forbids_caching(app, client, new_client, hospital_rows):
    rmyy = demo_institution("rmyy")
    urls = [_url(rule, rmyy.id, demo_user("region")) for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and rule.endpoint != "static"]
    anonymous = new_client()
    staff_urls = [u for u in urls if anonymous.get(u).headers.get("Location", "").startswith("/login")]
    assert len(staff_urls) > 80  # the walk found the staff pages (it finds new ones by itself)

    login(client, demo_user("platform"))
    statuses, failures = {}, []
    for url in staff_urls:
        response = client.get(url)
        statuses[url] = response.status_code
        if response.headers.get("Cache-Control") != "no-store":
            failures.append(f"{url}: {response.status_code} {response.headers.get('Cache-Control')!r}")
    assert not failures, "\n".join(failures)
    # Most of the walk reached real pages, not only their 404s; among them the case page with the complainant's
    # phone and the nurse's call list, which the security review found cacheable.
    assert sum(1 for s in statuses.values() if s == 200) >= 0.7 * len(staff_urls), statuses
    case = db.session.scalars(select(Complaint).where(Complaint.institution_id == rmyy.id)).first()
    assert statuses[f"/i/{rmyy.id}/complaints/{case.id}"] == 200
    assert statuses[f"/i/{rmyy.id}/survey/followup"] == 200


@pytest.mark.parametrize("path", ["/login", "/c/lookup", "/healthz", "/q/NOSUCHCODE-abc", "/no/such/page"])
def test_public_pages_and_errors_forbid_caching(client, path):
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_a_signed_in_users_download_forbids_caching(client, ctx):
    rmyy = demo_institution("rmyy")
    login(client, demo_user("rmyy-admin"))
    response = client.get(f"/i/{rmyy.id}/import/template/staff.csv")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_static_files_keep_their_caching(client):
    response = client.get("/static/css/staff.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
