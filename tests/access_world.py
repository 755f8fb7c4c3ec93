"""One institution with a row behind every URL argument of the app, for tests/test_access_matrix.py.

``build_world("rmyy")`` fills the demo general hospital, ``build_world("zyy")`` the demo TCM
hospital (the other tenant). The rows sit in the department the institution's demo handler is
bound to, so that a handler may reach them: a refusal of the handler then means a missing grant,
not a department out of scope. Rows go through the services where that is one call, and are
written directly where the service would need a whole workflow first (a reply, a refund): the
matrix asks who may reach a row, not whether the row's state allows the step.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from core.extensions import db
from organisation.models import Department, Notification, Region, Role, StaffUser, Touchpoint
from tests.factories import demo_institution, demo_user, make_region, make_staff, unique

# The demo accounts of one institution, by role (organisation/demo.py STAFF_ROLES).
ROLE_ACCOUNTS = {Role.INSTITUTION_ADMIN: "admin", Role.COMPLAINT_OFFICER: "officer",
                 Role.DEPARTMENT_HANDLER: "handler", Role.FOLLOWUP_NURSE: "nurse", Role.LEADERSHIP: "leader"}
# Demo departments the handlers are bound to (the first is where the world's rows go), and a second one.
HANDLER_DEPARTMENT = {"rmyy": "XNK", "zyy": "ZYNK"}
# Case per_endpoint whose page opens only on a case at that step, and that step.
STEP_STATE = {
    "complaints_staff.decline": "registered", "complaints_staff.accept": "registered",
    "complaints_staff.settle": "registered",
    "complaints_staff.reply_detail": "reply_drafted", "complaints_staff.approve_reply": "reply_drafted",
    "complaints_staff.return_reply": "reply_drafted",
    "complaints_staff.send_reply": "reply_approved", "complaints_staff.print_reply": "reply_approved",
    "complaints_staff.accept_reopen": "closed", "complaints_staff.refuse_reopen": "closed",
    "complaints_staff.record_phone_feedback": "closed_unanswered",
}


@dataclass
class World:
    """URL argument name -> value, for one institution; ``public`` holds the patient pages' tokens."""

    key: str
    args: dict[str, Any]
    public: dict[str, str] = field(default_factory=dict)
    api_token: str = ""
    per_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)  # endpoint -> arguments it takes instead
    notices: dict[int, int] = field(default_factory=dict)  # staff id -> a notification of their own

    def args_for(self, endpoint: str) -> dict[str, Any]:
        return {**self.args, **self.per_endpoint.get(endpoint, {})}


def _one(stmt):
    row = db.session.scalars(stmt.limit(1)).first()
    assert row is not None, str(stmt)
    return row


def _shared_reference_data() -> dict[str, Any]:
    """What every institution shares: the shipped questionnaires, the calendar, the national categories."""
    from complaints import categories as category_service
    from complaints.calendar_data import seed_from_chinesecalendar
    from complaints.workdays import invalidate_calendar_cache
    from survey import versioning

    templates = {t.code: t for t in versioning.install_builtin_templates(actor="test")}
    seed_from_chinesecalendar([2025, 2026], actor="test")
    invalidate_calendar_cache()
    categories = {c.code: c for c in category_service.default_categories(actor="test")}
    return {"templates": templates, "categories": categories}


def build_world(key: str, shared: dict[str, Any] | None = None) -> World:
    """Rows of institution ``key`` behind every URL argument; returns their ids by argument name."""
    from complaints import categories as category_service
    from complaints import routing, triage
    from complaints.feedback import feedback_token
    from complaints.intake import register_complaint
    from complaints.models import Attachment, CaseDepartment, Channel, Complaint, Extension, Satisfaction, Status
    from complaints.models.outcomes import Feedback, Rectification, Refund, ReopenStatus, Reply, ReplyStatus
    from survey import api as api_service
    from survey import discharges, followup, qr, staff_survey, versioning
    from survey.models import Channel as SurveyChannel
    from survey.models import FollowupOutcome, RecoveryAlert
    from survey.submission import Context, submit_response

    shared = shared or _shared_reference_data()
    institution = demo_institution(key)
    users = {role: demo_user(f"{key}-{suffix}") for role, suffix in ROLE_ACCOUNTS.items()}
    officer, admin, handler = (users[Role.COMPLAINT_OFFICER], users[Role.INSTITUTION_ADMIN],
                               users[Role.DEPARTMENT_HANDLER])
    department = _one(select(Department).where(Department.institution_id == institution.id,
                                               Department.code == HANDLER_DEPARTMENT[key]))
    other_department = _one(select(Department).where(Department.institution_id == institution.id,
                                                     Department.id != department.id,
                                                     Department.id.not_in(handler.department_ids)))
    touchpoint = _one(select(Touchpoint).where(Touchpoint.department_id == department.id).order_by(Touchpoint.id))

    # Surveys: the institution's own questionnaire, a live code, a low rating and its alert.
    window = shared["templates"]["WIN"]
    own_template = versioning.copy_template(window, institution, code=unique(f"M{key.upper()}"),
                                            name=f"{key} 矩阵问卷", actor=admin)
    code = qr.ensure_code(touchpoint, actor=admin, template=window)
    context = Context(institution_id=institution.id, channel=SurveyChannel.TOUCHPOINT_QR, version=window.published,
                      touchpoint=touchpoint, code_id=code.id, fill_seconds=30.0, device_hash=uuid.uuid4().hex,
                      ip_hash=uuid.uuid4().hex)
    answers = {"q_WIN_OVERALL": "1", "q_WIN_REASON": "R_WAIT"}
    response = submit_response(context, uuid.uuid4().hex, answers.get, lambda name: [answers[name]]
                               if name in answers else []).response
    alert = _one(select(RecoveryAlert).where(RecoveryAlert.response_id == response.id))

    # Follow-up: one discharge of the department; a staff survey batch; an API token.
    settings = followup.followup_settings(institution.id)
    raw = {"unit": department.code, "discharge_date": date.today().isoformat(), "patient_name": "矩阵患者",
           "phone": "13800001111", "ref": f"MX{uuid.uuid4().hex[:10]}"}
    data, errors = discharges.check_discharge(raw, discharges.Units.load(institution), settings, today=date.today())
    assert not errors, errors
    nurse = users[Role.FOLLOWUP_NURSE]
    discharge, _status = discharges.create_discharge(institution, data, source="upload", actor=nurse)
    followup.record_call(discharge, FollowupOutcome.REACHED, nurse=nurse)  # answers to enter
    batch = staff_survey.create_batch(institution, department, shared["templates"]["STF"], 2, actor=admin)
    token, clear_token = api_service.create_api_token(institution, name="矩阵接口", actor=admin)

    # Complaints: the institution's own category and routing rule, and one case led by the handler's department
    # with a row of every kind a URL names.
    category = category_service.create_category(institution, name=unique("矩阵类别"), actor=officer)
    rule = routing.create_routing_rule(institution, priority=5, category_id=None, touchpoint_id=None,
                                       department_id=None, keywords=unique("矩阵"),
                                       target_department_id=department.id, actor=officer)
    def case(status: Status) -> Complaint:
        """A case of the handler's department, put straight into ``status`` (the matrix does not walk the workflow)."""
        complaint, code = register_complaint(
            institution, channel=Channel.WALK_IN, received_at=datetime.now(UTC), subject="矩阵投诉",
            description="矩阵探测用的投诉。", wish="无", category=shared["categories"]["charges"],
            complainant_name="矩阵", complainant_phone="13912345678", first_contact=officer,
            submission_id=uuid.uuid4().hex, actor=officer)
        if status != Status.REGISTERED:
            triage.accept_complaint(complaint, actor=officer)
            routing.assign_department(complaint, department, co=[other_department], actor=officer)
            complaint.status = status
        db.session.flush()
        lookup_codes[complaint.case_number] = code
        return complaint

    lookup_codes: dict[str, str] = {}
    main = case(Status.IN_HANDLING)
    cases = {"registered": case(Status.REGISTERED), "reply_drafted": case(Status.REPLY_DRAFTED),
             "reply_approved": case(Status.REPLY_APPROVED), "closed": case(Status.CLOSED)}
    co_row = _one(select(CaseDepartment).where(CaseDepartment.complaint_id == main.id,
                                               CaseDepartment.department_id == other_department.id))
    now = datetime.now(UTC)
    rows = {
        "extension_id": Extension(complaint_id=main.id, extra_days=3, reason="矩阵延期", requested_by_id=handler.id),
        "rectification_id": Rectification(complaint_id=main.id, institution_id=institution.id,
                                          department_id=department.id, action="矩阵整改", owner_id=handler.id,
                                          due_date=date.today() + timedelta(days=10), status="done",
                                          evidence="已整改", done_at=now, done_by_id=handler.id),
        "refund_id": Refund(complaint_id=main.id, institution_id=institution.id, amount=Decimal("10.00"),
                            reason="矩阵退费", requested_by_id=handler.id),
        "attachment_id": Attachment(complaint_id=main.id, filename="matrix.pdf", content_type="application/pdf",
                                    size=9, data=b"%PDF-1.4\n"),
    }
    submitted = Reply(complaint_id=cases["reply_drafted"].id, number=1, body="矩阵答复。",
                      status=ReplyStatus.SUBMITTED, drafted_by_id=handler.id)
    approved = Reply(complaint_id=cases["reply_approved"].id, number=1, body="矩阵答复。",
                     status=ReplyStatus.APPROVED, drafted_by_id=handler.id, reviewed_by_id=officer.id,
                     reviewed_at=now)
    reopen = Feedback(complaint_id=cases["closed"].id, expires_at=now + timedelta(days=7), answered_at=now,
                      answer=Satisfaction.UNSATISFIED, reopened=True, reopen_status=ReopenStatus.REQUESTED)
    unanswered = Feedback(complaint_id=cases["closed"].id, expires_at=now + timedelta(days=7))
    db.session.add_all([*rows.values(), submitted, approved, reopen, unanswered])
    db.session.flush()

    # Each demo account gets a notice of its own (the notification pages are per user).
    notices = {}
    for user in [*users.values(), demo_user("platform"), demo_user("region")]:
        notice = Notification(user_id=user.id, institution_id=institution.id, kind="test", key=unique("matrix"),
                              subject="矩阵通知", body="", created_at=now)
        db.session.add(notice)
        notices[user.id] = notice
    spare = make_staff([Role.FOLLOWUP_NURSE], institution, display_name=f"{key}-矩阵人员")
    spare_admin = make_staff([Role.REGIONAL_ADMIN], region=institution.region, display_name=f"{key}-矩阵区域管理员")
    db.session.flush()

    args = {
        "institution_id": institution.id,
        "department_id": department.id, "touchpoint_id": touchpoint.id, "staff_id": spare.id,
        "template_id": own_template.id, "version_id": own_template.versions[0].id,
        "response_id": response.id, "alert_id": alert.id, "discharge_id": discharge.id, "batch_id": batch.id,
        "token_id": token.id, "category_id": category.id, "rule_id": rule.id,
        "case_id": main.id, "complaint_id": main.id, "row_id": co_row.id,
        **{name: row.id for name, row in rows.items()},
        "reply_id": submitted.id, "feedback_id": reopen.id,
        "region_id": institution.region_id,
    }
    # Steps that open only on a case at that step: their case (and its child row) instead of the main one.
    step = {"registered": {"case_id": cases["registered"].id},
            "reply_drafted": {"case_id": cases["reply_drafted"].id, "reply_id": submitted.id},
            "reply_approved": {"case_id": cases["reply_approved"].id, "reply_id": approved.id},
            "closed": {"case_id": cases["closed"].id, "feedback_id": reopen.id},
            "closed_unanswered": {"case_id": cases["closed"].id, "feedback_id": unanswered.id}}
    world = World(key=key, args=args, api_token=clear_token,
                  per_endpoint={endpoint: step[state] for endpoint, state in STEP_STATE.items()})
    # The platform's account pages list platform and regional admins, not a hospital's staff.
    for endpoint in ("org.platform_staff_edit", "org.platform_staff_toggle", "org.platform_staff_reset_two_factor"):
        world.per_endpoint[endpoint] = {"staff_id": spare_admin.id}
    world.notices = {user_id: notice.id for user_id, notice in notices.items()}
    world.public = {
        "touchpoint_survey": qr.path_token(code),
        "discharge_survey": discharges.discharge_link_token(discharge),
        "staff_survey": staff_survey.token_path(batch.tokens[0]),
        "feedback": feedback_token(unanswered),
        "thanks": response.submission_id,
        "case_number": main.case_number, "lookup_code": lookup_codes[main.case_number],
    }
    return world


def outsider_region() -> Region:
    """A province of its own: its regional admin sees none of the demo institutions."""
    return make_region()


def outsider_admin(region: Region) -> StaffUser:
    return make_staff([Role.REGIONAL_ADMIN], region=region, display_name="外省区域管理员")
