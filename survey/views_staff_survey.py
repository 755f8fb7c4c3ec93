"""Staff satisfaction survey pages: token batches, slips, results, and the staff's own /s/ page."""
from __future__ import annotations

import io

from flask import redirect, render_template, request, send_file, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import IntegerField, SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import TextInput

from core import public
from core.clock import local_today
from core.db import utcnow
from core.errors import render_error
from core.extensions import db
from core.forms import FlaskForm
from core.views import handle_form, send_table
from organisation.forms import int_or_none
from organisation.models import Institution
from organisation.scope import Permission, can, department_scope, get_institution_or_404, get_owned_or_404
from organisation.services import departments_for
from survey import patient, posters
from survey import staff_survey as service
from survey.blueprints import staff_bp as bp
from survey.models import Channel, StaffSurveyBatch, SurveyTemplate
from survey.patient import bp as patient_bp
from survey.submission import SubmissionError, find_by_submission_id
from survey.versioning import templates_for


class BatchForm(FlaskForm):
    department_id = SelectField(_l("科室"), coerce=int_or_none, validators=[InputRequired()])
    template_id = SelectField(_l("问卷"), coerce=int_or_none, validators=[InputRequired()])
    size = IntegerField(_l("份数"), validators=[InputRequired(message=_l("请填写份数。")),
                                               NumberRange(1, service.MAX_BATCH_SIZE,
                                                           message=_l("份数须在 1 到 1000 之间。"))],
                        description=_l("一般为科室在岗人数。每份是一个只能使用一次的匿名链接。"),
                        widget=TextInput(), render_kw={"inputmode": "numeric", "autocomplete": "off"})
    label = StringField(_l("名称（选填）"), validators=[Optional(), Length(max=service.LABEL_LIMIT)],
                        description=_l("例如“2026 年度职工满意度调查”。留空则按科室和日期命名。"))
    submit = SubmitField(_l("生成问卷链接"))


class ResultsFilterForm(FlaskForm):
    class Meta:
        csrf = False

    template_id = SelectField(_l("问卷"), coerce=int_or_none)
    year = SelectField(_l("年度"), coerce=int_or_none)


def actor():
    return current_user._get_current_object()


def this_year() -> int:
    return local_today().year


# Results -----------------------------------------------------------------

def _results_filter(institution: Institution) -> tuple[ResultsFilterForm, SurveyTemplate | None, int, bool]:
    """The filter form, the chosen template and year, and whether the query string was valid."""

    templates = [t for t in templates_for(institution, audience="staff") if t.versions]
    years = sorted(set(service.years_with_responses(institution)) | {this_year()}, reverse=True)
    form = ResultsFilterForm(request.args)
    form.template_id.choices = [(t.id, t.name) for t in templates]
    form.year.choices = [(y, str(y)) for y in years]
    valid = not request.args or form.validate()
    by_id = {t.id: t for t in templates}
    template = by_id.get(form.template_id.data) if valid else None
    if template is None:
        template = next((t for t in templates if t.is_builtin), templates[0] if templates else None)
    year = form.year.data if valid and form.year.data in years else this_year()
    form.template_id.data = template.id if template else None
    form.year.data = year
    return form, template, year, valid


@bp.get("/staff-survey")
def staff_results(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    form, template, year, valid = _results_filter(institution)
    results = None
    if template is not None:
        results = service.staff_results(institution, template, year,
                                        departments=department_scope(actor(), institution))
    body = render_template("survey/staff_survey/results.html", institution=institution, form=form,
                           results=results, valid=valid, format_cell=service.format_cell,
                           notice=service.suppressed_message(results.min_group) if results else "",
                           can_manage=can(actor(), Permission.MANAGE_SURVEYS, institution))
    return body, 200 if valid else 400


@bp.get("/staff-survey/results.csv")
def staff_results_csv(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    form, template, year, valid = _results_filter(institution)
    if not valid:
        return render_error(400, gettext("所选问卷或年度无效。"))
    if template is None:
        return render_error(404, gettext("还没有医务人员满意度问卷。"))
    results = service.staff_results(institution, template, year,
                                    departments=department_scope(actor(), institution))
    return send_table("csv", service.results_sheet(results), filename=f"staff-survey-{year}.csv")


# Batches -----------------------------------------------------------------

def _batch_or_404(institution: Institution, batch_id: int) -> StaffSurveyBatch:
    return get_owned_or_404(StaffSurveyBatch, batch_id, institution)


@bp.get("/staff-survey/batches")
def staff_batches(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    batches = list(db.session.scalars(select(StaffSurveyBatch).where(
        StaffSurveyBatch.institution_id == institution.id).order_by(StaffSurveyBatch.created_at.desc())))
    used = {b.id: service.batch_used_count(b) for b in batches}
    return render_template("survey/staff_survey/batches.html", institution=institution, batches=batches, used=used,
                           day_text=service.day_text, now=utcnow(),
                           min_group=service.settings_for(institution.id).staff_min_group)


@bp.route("/staff-survey/batches/new", methods=["GET", "POST"])
def staff_batch_new(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    form = BatchForm()
    departments = {d.id: d for d in departments_for(institution, active_only=True)}
    templates = {t.id: t for t in service.staff_templates(institution)}
    form.department_id.choices = [("", gettext("请选择"))] + [(d.id, d.name) for d in departments.values()]
    form.template_id.choices = [(t.id, t.name) for t in templates.values()]

    def action():
        department = departments.get(form.department_id.data)
        template = templates.get(form.template_id.data)
        if department is None:
            raise service.StaffSurveyError(gettext("请选择科室。"), "department_id")
        if template is None:
            raise service.StaffSurveyError(gettext("请选择问卷。"), "template_id")
        return service.create_batch(institution, department, template, form.size.data, actor=actor(),
                                    label=form.label.data or "")

    return handle_form(form, action, success=gettext("问卷链接已生成，请下载打印后发放。"),
                       next_url=lambda batch: url_for("survey_staff.staff_batch", institution_id=institution.id,
                                                      batch_id=batch.id),
                       template="survey/staff_survey/batch_new.html", institution=institution,
                       has_templates=bool(templates))


@bp.get("/staff-survey/batches/<int:batch_id>")
def staff_batch(institution_id: int, batch_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    batch = _batch_or_404(institution, batch_id)
    return render_template("survey/staff_survey/batch.html", institution=institution, batch=batch,
                           used=service.batch_used_count(batch), expires=service.day_text(batch.expires_at),
                           min_group=service.settings_for(institution.id).staff_min_group,
                           sample=service.batch_urls(batch)[:1])


@bp.get("/staff-survey/batches/<int:batch_id>/slips.pdf")
def staff_batch_slips(institution_id: int, batch_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    batch = _batch_or_404(institution, batch_id)
    version = batch.template.published
    heading = (version.definition.get("title") if version else "") or batch.template.name
    data = posters.slips_pdf([posters.Slip(url) for url in service.batch_urls(batch)],
                             institution_name=institution.name, department_name=batch.department.name,
                             heading=heading, expires=service.day_text(batch.expires_at), title=batch.label)
    response = send_file(io.BytesIO(data), mimetype="application/pdf", download_name=f"staff-survey-{batch.id}.pdf")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/staff-survey/batches/<int:batch_id>/links.csv")
def staff_batch_csv(institution_id: int, batch_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    batch = _batch_or_404(institution, batch_id)
    return send_table("csv", service.urls_sheet(batch), filename=f"staff-survey-{batch.id}.csv")


# The staff member's page (public, like the patient pages) ------------------

NOTICES = {
    "invalid": (404, _l("链接无法识别"), _l("请确认链接完整，或向发放问卷的部门索取新的链接。")),
    "used": (410, _l("此链接已使用"), _l("每个链接只能提交一次问卷。感谢您的参与！")),
    "expired": (410, _l("此链接已过期"), _l("本次问卷已截止。如需参与，请联系发放问卷的部门。")),
    "closed": (503, _l("问卷暂未开放"), _l("问卷正在更新，请稍后再试。")),
}


def _notice(problem: str):
    status, title, message = NOTICES[problem]
    return public.render_notice(str(title), str(message), status)


@patient_bp.route("/s/<token>", methods=["GET", "POST"])
@patient.limit_submissions
def staff_survey(token: str):
    posted = request.method == "POST"
    staff_token, problem = service.resolve_token(token, lock=posted)
    if problem == "used" and posted:
        # A retry of the submission that used the token (double tap, bad network) ends as it did.
        previous = find_by_submission_id(request.form.get("submission_id", ""))
        if previous is not None and previous.channel == Channel.STAFF_TOKEN.value:
            return redirect(url_for("patient.staff_survey_done"), code=303)
    if problem is not None:
        return _notice(problem)
    batch = staff_token.batch
    version = batch.template.published
    institution = db.session.get(Institution, batch.institution_id)
    heading = version.definition.get("title") or batch.template.name
    subheading = f"{institution.name}　{batch.department.name}"
    context_key = f"staff:{batch.id}"
    action = url_for("patient.staff_survey", token=token)
    if not posted:
        return patient.render_survey(version, action=action, context_key=context_key, heading=heading,
                                     subheading=subheading)
    form_problem, fill_seconds = patient.read_context_timing(context_key)
    submission_id = request.form.get("submission_id", "")
    try:
        service.submit_with_token(staff_token, submission_id, request.form.get, request.form.getlist,
                                  form_problem=form_problem, fill_seconds=fill_seconds)
    except SubmissionError as exc:
        db.session.rollback()
        return patient.render_rejected(version, exc, action=action, context_key=context_key, heading=heading,
                                       subheading=subheading)
    db.session.commit()  # response stored and token used up together, before "received"
    return redirect(url_for("patient.staff_survey_done"), code=303)


@patient_bp.get("/s/done")
def staff_survey_done():
    return public.render_notice(gettext("问卷已提交，谢谢您！"),
                                 gettext("您的回答匿名保存，只以科室汇总结果呈现，人数太少的科室不单独显示。"), 200)
