"""Intake pages: the complainant's form and receipt, the progress lookup, the officer's registration form,
turning a survey alert into a complaint, attachments and the category list."""
from __future__ import annotations

from datetime import datetime
from io import BytesIO
from typing import Any

from flask import (
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from complaints import access, attachments, case_section, intake, lookup
from complaints import categories as category_service
from complaints import emergency as emergency_service
from complaints import tasks as complaint_tasks
from complaints.blueprints import case_url, public_bp, staff_bp
from complaints.form_submission import (
    REMOVE_FIELD,
    FormSubmission,
    network_wait,
    public_values,
    staff_values,
    wait_text,
)
from complaints.forms_intake import (
    FromAlertForm,
    OfficerComplaintForm,
    PublicComplaintForm,
)
from complaints.models import Attachment, Complaint
from complaints.subjects import derive_subject
from complaints.uploads import read_intake_body
from core import signing
from core.clock import local_timezone
from core.extensions import db
from core.public import (
    device_id,
    device_key,
    new_submission_id,
    public_page,
    render_notice,
    too_many_requests,
    valid_submission_id,
)
from core.ratelimit import client_address, limited
from core.tasks import QUEUE_HIGH, try_enqueue
from organisation.forms import ConfirmForm
from organisation.models import Institution, Touchpoint
from organisation.nav import register_nav
from organisation.scope import Permission, can, get_institution_or_404, get_owned_or_404
from organisation.services import departments_for
from survey import alerts

INTAKE_ENDPOINTS = {"complaints.intake", "complaints_staff.register"}


def actor():
    return current_user._get_current_object()


@public_bp.url_value_preprocessor
@staff_bp.url_value_preprocessor
def _read_intake_body(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Runs before any before_request hook reads the body: the intake forms read theirs (complaints.uploads).
    if endpoint in INTAKE_ENDPOINTS:
        read_intake_body()


# The public pages: phone-friendly, no login, no JavaScript needed -------------------------------

@public_bp.errorhandler(429)
def _too_many(error):
    return too_many_requests(error, gettext("操作过于频繁"),
                             gettext("请稍等一会儿再试。您已经提交成功的投诉不会丢失。"))


@public_bp.errorhandler(RequestEntityTooLarge)
def _too_large(error):
    """A body beyond what the form reads at all (complaints.uploads); smaller ones come back as the form itself."""
    institution_id = (request.view_args or {}).get("institution_id")
    back = url_for("complaints.intake", institution_id=institution_id) if institution_id else None
    return render_notice(gettext("文件太大，没有收到"),
                         gettext("选择的照片或文件合计太大，这次提交没有收到。每个文件不超过 %(mb)d MB，最多 %(n)d 个。"
                                 "请返回投诉表单，少选几个文件或压缩后再提交；用手机的“返回”键回去，已填写的文字一般还在。",
                                 mb=attachments.MAX_UPLOAD_BYTES // (1024 * 1024), n=attachments.MAX_ATTACHMENTS),
                         413, back=back)


def _public_institution_or_404(institution_id: int) -> Institution:
    institution = db.session.get(Institution, institution_id)
    if institution is None or not institution.active:
        abort(404)
    return institution


def _linked_rating(institution: Institution, submission_id: str | None) -> alerts.RatingLink | None:
    """The rating a complainant came from (the thank-you page's ?response=), if it is this hospital's."""
    if not submission_id or not valid_submission_id(submission_id):
        return None
    return alerts.rating_for_complaint(institution.id, submission_id)


def _prefill_from_rating(form: PublicComplaintForm, institution: Institution, submission_id: str | None) -> None:
    """A complaint opened from the thank-you page starts from the rating: its comment and its window's department."""
    if not submission_id or not valid_submission_id(submission_id):
        return
    draft = alerts.rating_draft(institution.id, submission_id)
    if draft is None:
        return
    form.description.data = draft.comment or None  # a rating's comment is far shorter than the limit
    if draft.department_id in {value for value, _label in form.department.choices}:
        form.department.data = draft.department_id


def queue_emergency_notice(complaint: Complaint) -> None:
    """After the commit: queue the notice of a case flagged as an emergency, or of a public safety report;
    the minutely sweeps send them if this fails.

    Never before the commit: registration holds the hospital's case-number row lock until then.
    """
    # the case is committed; if queueing fails complaints.tasks' sweeps send the notice
    if complaint.safety_emergency and complaint.emergency_notified_at is None:
        try_enqueue(complaint_tasks.notify_emergency, complaint.id, queue=QUEUE_HIGH)
    elif complaint.safety_reported_at is not None and complaint.safety_report_notified_at is None:
        try_enqueue(complaint_tasks.notify_safety_reports, complaint.institution_id, queue=QUEUE_HIGH)


def ensure_default_categories() -> None:
    """On a fresh install the national categories appear with the first form, committed so that their ids hold."""
    if category_service.defaults_missing():
        category_service.default_categories(actor="system")
        db.session.commit()


def _public_choices(form: PublicComplaintForm, institution: Institution) -> None:
    ensure_default_categories()
    form.category.choices = [(c.id, category_service.category_label(c))
                             for c in category_service.categories_for(institution)]
    form.department.choices = [("", gettext("不清楚 / 不选"))] + [
        (d.id, d.name) for d in departments_for(institution, active_only=True)]


def _expected_reply(institution: Institution, complaint: Complaint) -> dict[str, Any]:
    """The rule in plain words and the case's own deadline, stored when it was registered (the clock starts at
    receipt), for the receipts."""
    settings = intake.complaint_settings(institution.id)
    return {"days": complaint.working_days or settings.standard_days, "complex_days": settings.complex_days,
            "date": complaint.due_date, "provisional": bool(complaint.deadline_provisional)}


def _receipt(institution: Institution, complaint: Complaint, code: str):
    # The phone that shows the code may look the case up even while its network is slowed (complaints.lookup).
    lookup.trust(lookup.trust_key(institution.id, complaint.case_number, device_id()))
    response = public_page(
        "complaints/public/receipt.html", institution=institution, case_number=complaint.case_number, code=code,
        emergency=complaint.safety_emergency, safety_report=complaint.safety_reported_at is not None,
        expected=_expected_reply(institution, complaint),
        lookup_url=url_for("complaints.lookup", i=institution.id, n=complaint.case_number))
    response.headers["Cache-Control"] = "no-store"
    return response


def _form_context(institution: Institution) -> str:
    return f"complaint:{institution.id}"


def _public_form_page(institution: Institution, form: PublicComplaintForm, status: int = 200,
                      submission: FormSubmission | None = None):
    if not valid_submission_id(form.submission_id.data or ""):
        form.submission_id.data = new_submission_id()
    form.form_token.data = signing.issue_form_token(_form_context(institution))  # single-use: a fresh one
    response = public_page(
        "complaints/public/form.html", status, form=form, institution=institution,
        settings=intake.complaint_settings(institution.id), remove_field=REMOVE_FIELD,
        kept=attachments.pending_files(institution.id, form.submission_id.data or ""),
        max_files=attachments.MAX_ATTACHMENTS, lookup_url=url_for("complaints.lookup", i=institution.id))
    if submission is not None:
        response.headers.update(submission.headers)
    return response


# The survey thank-you page links here: url_for("complaints.intake", institution_id=…, response=…).
@public_bp.route("/<int:institution_id>/new", methods=["GET", "POST"], endpoint="intake")
@limited(("COMPLAINT_INTAKE_IP_LIMIT", client_address), ("COMPLAINT_INTAKE_DEVICE_LIMIT", device_key))
def intake_form(institution_id: int):
    """The complainant's own form (from a QR code or the survey thank-you page) and, after POST, the receipt.

    Its form token is single-use: a complaint registered uses it up, and the form it comes back as carries
    a new one. Complaints registered from one network are capped (COMPLAINT_INTAKE_NETWORK_LIMIT).
    """
    institution = _public_institution_or_404(institution_id)
    form = PublicComplaintForm()
    _public_choices(form, institution)
    if request.method == "GET":
        form.submission_id.data = new_submission_id()
        form.response.data = request.args.get("response", "")[:40]
        _prefill_from_rating(form, institution, form.response.data)
        return _public_form_page(institution, form)

    submission_id = form.submission_id.data or ""
    if valid_submission_id(submission_id):
        existing = intake.find_submission(institution, submission_id)
        if existing is not None:  # a double tap or a retry: the receipt again, nothing stored twice
            return _receipt(institution, existing, intake.lookup_code_for(institution.id, submission_id))
    else:
        form.submission_id.data = submission_id = new_submission_id()
    submission = FormSubmission.start(institution.id, form, submission_id, public=True,
                                      field_names={"departments": "department"})
    token = form.form_token.data or ""
    problem, _issued = signing.read_form_token(token, _form_context(institution), intake.FORM_TOKEN_MAX_AGE)
    if problem is not None:
        submission.refuse(gettext("页面已过期，请检查内容后再点一次“提交投诉”。"))
    valid = form.validate()
    values = public_values(institution, form, _linked_rating(institution, form.response.data))
    submission.check(lambda: intake.check_complaint(institution, **values, attachments=submission.files,
                                                    kept_files=submission.kept_count()))
    if valid and submission.ok:
        if signing.form_token_used(token):
            submission.refuse(gettext("这张表单已经提交过一次了。如果还要反映别的问题，请检查下面的内容，"
                                      "再点一次“提交投诉”。"), status=409)
        elif (wait := network_wait(institution)) is not None:
            submission.refuse(gettext("您所在的网络提交的网上投诉太多了，为防止有人恶意刷屏，暂停接收，"
                                      "请 %(wait)s后再点“提交投诉”。您填写的内容都还在本页；也可以到医院投诉接待处"
                                      "当面反映，工作人员会为您登记。", wait=wait_text(wait)), status=429)
            submission.headers["Retry-After"] = str(wait)
        elif not signing.use_form_token(token):  # the same form sent twice at once: the other one won
            existing = intake.find_submission(institution, submission_id)
            if existing is not None:
                return _receipt(institution, existing, intake.lookup_code_for(institution.id, submission_id))
            submission.refuse(gettext("这张表单已经提交过一次了。如果还要反映别的问题，请检查下面的内容，"
                                      "再点一次“提交投诉”。"), status=409)
        else:
            try:
                complaint, code = intake.register_complaint(
                    institution, **values, first_contact=None, attachments=submission.files,
                    submission_id=submission_id, actor="self-service")
            except intake.IntakeError as exc:
                db.session.rollback()
                submission.add(exc)
            else:
                db.session.commit()  # durable before the complainant is told it was received
                queue_emergency_notice(complaint)
                return _receipt(institution, complaint, code)
    submission.come_back()
    return _public_form_page(institution, form, submission.status, submission)


# The officer's registration form (首诉负责) ----------------------------------------------------

def _local_now_text() -> str:
    return datetime.now(local_timezone()).strftime("%Y-%m-%dT%H:%M")


def _staff_choices(form: OfficerComplaintForm, institution: Institution) -> None:
    ensure_default_categories()
    form.category.choices = [("", gettext("请选择"))] + [
        (c.id, category_service.category_label(c) + (gettext("（质量安全）") if c.safety else ""))
        for c in category_service.categories_for(institution)]
    touchpoints = db.session.scalars(select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                                              Touchpoint.active.is_(True))
                                     .order_by(Touchpoint.code)).all()
    form.touchpoint.choices = [("", gettext("（无）"))] + [(t.id, t.name) for t in touchpoints]
    form.departments.choices = [(d.id, d.name) for d in departments_for(institution, active_only=True)]


def _staff_receipt(institution: Institution, complaint: Complaint, code: str, *, heading: str):
    return render_template("complaints/intake/registered.html", institution=institution, complaint=complaint,
                           code=code, heading=heading, case_url=case_url(complaint),
                           category=category_service.category_label(complaint.category),
                           expected=_expected_reply(institution, complaint),
                           lookup_url=url_for("complaints.lookup", i=institution.id, n=complaint.case_number,
                                              _external=True))


def _propose_subject(form: OfficerComplaintForm) -> str | None:
    """With the subject left empty: the one derived from the description, shown as the field's placeholder."""
    if (form.subject.data or "").strip() or not (form.description.data or "").strip():
        return None
    proposed = derive_subject(form.description.data)
    form.subject_proposed.data = proposed
    form.subject.render_kw = {**(form.subject.render_kw or {}), "placeholder": proposed}
    return proposed


def _subject_question(form: OfficerComplaintForm) -> str | None:
    """An empty subject is asked for once: the page proposes one; submitted again empty, the proposal is taken.

    A proposal is only taken as shown: if the description changed since, the new proposal is shown first.
    """
    shown = form.subject_proposed.data
    proposed = _propose_subject(form)
    if proposed is None or proposed == shown:
        return None
    return gettext("请确认事由：直接再点“登记”将使用“%(subject)s”，也可以改写。", subject=proposed)


def _register_page(institution: Institution, form: OfficerComplaintForm, status: int = 200):
    if not valid_submission_id(form.submission_id.data or ""):
        form.submission_id.data = new_submission_id()
    kept = attachments.pending_files(institution.id, form.submission_id.data or "")
    return render_template("complaints/intake/register.html", institution=institution, form=form, kept=kept,
                           remove_field=REMOVE_FIELD), status


@staff_bp.route("/new", methods=["GET", "POST"])
def register(institution_id: int):
    """Register a walk-in, phone, letter, e-mail or 12345 complaint; the officer becomes first contact.

    Every mistake is reported at once (the form's and the intake service's), and the chosen files are kept.
    """
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    form = OfficerComplaintForm()
    _staff_choices(form, institution)
    if request.method == "GET":
        form.submission_id.data = new_submission_id()
        form.received_at.data = _local_now_text()
        return _register_page(institution, form)
    submission_id = form.submission_id.data or ""
    if valid_submission_id(submission_id):
        existing = intake.find_submission(institution, submission_id)
        if existing is not None:
            return _staff_receipt(institution, existing, intake.lookup_code_for(institution.id, submission_id),
                                  heading=gettext("该投诉已登记"))
    else:
        form.submission_id.data = submission_id = new_submission_id()
    submission = FormSubmission.start(institution.id, form, submission_id)
    valid = form.validate_on_submit()
    values = staff_values(form)
    submission.check(lambda: intake.check_complaint(institution, **values, attachments=submission.files,
                                                    kept_files=submission.kept_count()))
    ready = valid and submission.ok and values["received_at"] is not None
    question = _subject_question(form) if ready else None  # proposes the subject when it asks
    if question:
        submission.refuse(question, "subject", status=200)
    elif ready:
        values["subject"] = values["subject"] or form.subject_proposed.data or ""
        try:
            complaint, code = intake.register_complaint(
                institution, **values, first_contact=actor(), attachments=submission.files,
                submission_id=submission_id, safety_emergency=form.emergency.data, actor=actor())
        except intake.IntakeError as exc:
            db.session.rollback()
            submission.add(exc)
        else:
            db.session.commit()
            queue_emergency_notice(complaint)
            return _staff_receipt(institution, complaint, code, heading=gettext("投诉已登记"))
    if not question:
        _propose_subject(form)
    submission.come_back()
    return _register_page(institution, form, submission.status)


@staff_bp.post("/from-alert/<int:alert_id>")
def from_alert(institution_id: int, alert_id: int):
    """Turn a survey service-recovery alert into a complaint (once; a second click shows the same case)."""
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    if alerts.alert_for_complaint(institution.id, alert_id) is None:
        abort(404)
    form = FromAlertForm()
    categories = category_service.categories_for(institution)
    form.category.choices = [("", "")] + [(c.id, c.name) for c in categories]
    if not form.validate_on_submit():
        abort(400)
    category = next((c for c in categories if c.id == form.category.data), None)
    existing = intake.complaint_for_alert(institution, alert_id)
    try:
        complaint, code = intake.complaint_from_alert(institution, alert_id, actor=actor(), category=category)
    except intake.IntakeError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("survey_staff.alert_detail", institution_id=institution.id, alert_id=alert_id))
    db.session.commit()
    queue_emergency_notice(complaint)
    return _staff_receipt(institution, complaint, code,
                          heading=gettext("该提醒已转为投诉") if existing is not None else gettext("已转为投诉"))


def alert_button_context(institution: Institution, alert: Any) -> dict[str, Any]:
    """What the survey alert page needs to show the "转为投诉" button (or the case it became)."""
    if not can(current_user, Permission.MANAGE_COMPLAINTS, institution):
        return {"can_convert": False}
    complaint = intake.complaint_for_alert(institution, alert.id)
    form = FromAlertForm()
    form.category.choices = [("", gettext("类别：默认“其他”"))] + [
        (c.id, category_service.category_label(c)) for c in category_service.categories_for(institution)]
    return {"can_convert": True, "converted": complaint, "convert_form": form,
            "case_url": case_url(complaint) if complaint is not None else None,
            "convert_url": url_for("complaints_staff.from_alert", institution_id=institution.id, alert_id=alert.id)}


def complaint_attachments(complaint: Complaint) -> list[Attachment]:
    """A case's attachments without their bytes (for the case page)."""
    from sqlalchemy.orm import defer

    return list(db.session.scalars(select(Attachment).options(defer(Attachment.data))
                                   .where(Attachment.complaint_id == complaint.id).order_by(Attachment.id)))


# Attachments, lookup codes --------------------------------------------------------------------

@staff_bp.get("/attachments/<int:attachment_id>")
def attachment(institution_id: int, attachment_id: int):
    """Download one attachment, for those who work its case (or the case it was merged into)."""
    row = db.session.get(Attachment, attachment_id)
    if row is None:
        abort(404)
    institution = access.case_institution_or_404(institution_id, work=True)
    if not access.may_read_case_files(current_user, get_owned_or_404(Complaint, row.complaint_id, institution)):
        abort(404)
    response = send_file(BytesIO(row.data), mimetype=row.content_type, as_attachment=True,
                         download_name=row.filename, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@staff_bp.post("/<int:complaint_id>/lookup-code")
def reissue_code(institution_id: int, complaint_id: int):
    """A new lookup code for a complainant who lost theirs (shown once to the officer)."""
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    complaint = get_owned_or_404(Complaint, complaint_id, institution)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    code = intake.reissue_lookup_code(complaint, actor=actor())
    db.session.commit()
    return _staff_receipt(institution, complaint, code, heading=gettext("已重新生成查询码"))


@staff_bp.post("/<int:complaint_id>/emergency")
def emergency(institution_id: int, complaint_id: int):
    """Flag a registered case as a quality-and-safety emergency: officers, admins and leadership are alerted now."""
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    complaint = get_owned_or_404(Complaint, complaint_id, institution)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        flagged = emergency_service.flag_emergency(complaint, actor=actor())
    except emergency_service.EmergencyError as exc:
        flash(str(exc), "error")
    else:
        if flagged:
            db.session.commit()
            queue_emergency_notice(complaint)
            flash(gettext("已标记为医疗质量安全紧急投诉，并已通知相关负责人。"), "success")
        else:
            flash(gettext("该案件已是医疗质量安全紧急投诉。"), "info")
    return redirect(case_url(complaint))


# Wiring ------------------------------------------------------------------------------------

def init_app(app: Flask) -> None:

    def manages(user, institution):
        return can(user, Permission.MANAGE_COMPLAINTS, institution)

    register_nav(app, _l("登记投诉"), "complaints_staff.register", manages, order=51)
    case_section(app, "complaints/intake/_case_intake.html", order=5)
    app.jinja_env.globals["complaint_alert_button"] = alert_button_context
    app.jinja_env.globals["complaint_attachments"] = complaint_attachments

