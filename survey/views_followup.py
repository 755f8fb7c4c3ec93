"""Discharge follow-up pages: upload, call list, outcomes, phone answers, rates, slips,
API tokens (staff), and the discharge-slip survey (patient, /d/<token>)."""
from __future__ import annotations

import base64
from datetime import date
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.file import FileAllowed, FileField, FileRequired
from sqlalchemy import select
from wtforms import HiddenField, RadioField, SelectField, SelectMultipleField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from core import public
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from core.forms import FlaskForm
from core.public import new_submission_id
from core.table_reader import EXTENSIONS, ImportFileError
from core.views import handle_form, send_table
from organisation.forms import ConfirmForm
from organisation.models import Institution
from organisation.scope import Permission, can, department_scope, get_institution_or_404, get_owned_or_404
from survey import api as api_service
from survey import definitions, discharges, followup, patient, qr
from survey.blueprints import staff_bp as bp
from survey.models import ApiToken, Channel, Discharge, FollowupCall, FollowupOutcome
from survey.submission import Context, SubmissionError, find_by_submission_id

PAGE_SIZE = 50
CALL_OUTCOMES = [o for o in FollowupOutcome if o != FollowupOutcome.PENDING]


def actor():
    return current_user._get_current_object()


# Forms -----------------------------------------------------------------

class DischargeUploadForm(FlaskForm):
    file = FileField(_l("出院名单（CSV、XLSX 或 XLS）"), validators=[
        FileRequired(message=_l("请选择要上传的文件。")),
        FileAllowed(list(EXTENSIONS), message=_l("只支持 CSV、XLSX 或 XLS 文件。")),
    ])
    submit = SubmitField(_l("上传"))


class CallOutcomeForm(FlaskForm):
    outcome = SelectField(_l("回访结果"), choices=[(o.value, o.label) for o in CALL_OUTCOMES],
                          validators=[DataRequired(message=_l("请选择回访结果。"))])


class MonthForm(FlaskForm):
    class Meta:
        csrf = False

    month = StringField(_l("月份"), validators=[Optional(), Regexp(
        r"^(19|2\d)\d{2}-(0[1-9]|1[0-2])$", message=_l("月份格式为 YYYY-MM。"))], render_kw={"type": "month"})


NO_EXPIRY = "never"


class ApiTokenForm(FlaskForm):
    name = StringField(_l("令牌名称"), description=_l("例如：HIS 出院接口"),
                       validators=[DataRequired(message=_l("请填写令牌名称。")),
                                   Length(max=api_service.TOKEN_NAME_LIMIT)])
    valid_days = SelectField(_l("有效期"), default=str(api_service.DEFAULT_VALID_DAYS),
                             choices=[("30", _l("30 天")), ("90", _l("90 天")), ("180", _l("180 天")),
                                      ("365", _l("1 年")), ("730", _l("2 年")), (NO_EXPIRY, _l("永不过期"))],
                             description=_l("到期后令牌不能再调用接口，需生成新令牌并更新调用方的配置。"))
    submit = SubmitField(_l("生成令牌"))

    def days(self) -> int | None:
        return None if self.valid_days.data == NO_EXPIRY else int(self.valid_days.data)


def phone_answers_form(definition: dict[str, Any]) -> FlaskForm:
    """A form with one field per questionnaire item; the answers are checked by the questionnaire rules."""

    class PhoneAnswersForm(FlaskForm):
        submission_id = HiddenField()
        contact_phone = StringField(_l("联系电话（患者希望被联系时填写）"), validators=[Optional(), Length(max=20)])
        submit = SubmitField(_l("保存回访答案"))

    for item in definition["items"]:
        name = f"q_{item['code']}"
        choices = [(o["value"], o["label"]) for o in item["options"]]
        if item["type"] == definitions.TEXT:
            field = TextAreaField(item["text"], validators=[Optional(), Length(max=item.get("max_length") or 500)])
        elif item["type"] == definitions.MULTI:
            field = SelectMultipleField(item["text"], choices=choices, validate_choice=False)
        else:
            field = RadioField(item["text"], choices=choices, validate_choice=False, validators=[Optional()])
        setattr(PhoneAnswersForm, name, field)
    return PhoneAnswersForm()


def _field_value(form: FlaskForm, name: str) -> Any:
    field = getattr(form, name, None)
    return None if field is None else field.data


def _field_list(form: FlaskForm, name: str) -> list:
    value = _field_value(form, name)
    return list(value) if isinstance(value, (list, tuple)) else ([value] if value else [])


# Call list and outcomes --------------------------------------------------

def _institution(institution_id: int) -> Institution:
    return get_institution_or_404(institution_id, Permission.FOLLOW_UP)


def _discharge(institution: Institution, discharge_id: int) -> Discharge:
    discharge = get_owned_or_404(Discharge, discharge_id, institution)
    scope = department_scope(actor(), institution)
    if scope is not None and discharge.department_id not in scope:
        abort(404)
    return discharge


def _awaiting_answers(institution: Institution, scope: set[int] | None) -> list[Discharge]:
    stmt = (select(Discharge).join(FollowupCall, FollowupCall.discharge_id == Discharge.id)
            .where(Discharge.institution_id == institution.id, FollowupCall.outcome == FollowupOutcome.REACHED.value,
                   FollowupCall.response_id.is_(None), Discharge.purged_at.is_(None))
            .order_by(Discharge.discharge_date, Discharge.id))
    if scope is not None:
        stmt = stmt.where(Discharge.department_id.in_(scope))
    return list(db.session.scalars(stmt).unique())


def _render_calls(institution: Institution, status: int = 200):
    scope = department_scope(actor(), institution)
    today = local_today()
    calls = followup.due_list(institution, today=today, department_ids=scope)
    return render_template("survey/followup/calls.html", institution=institution, calls=calls, today=today,
                           awaiting=_awaiting_answers(institution, scope), outcomes=CALL_OUTCOMES,
                           unit_label=followup.unit_label,
                           settings=followup.followup_settings(institution.id)), status


@bp.get("/followup")
def followup_calls(institution_id: int):
    return _render_calls(_institution(institution_id))


@bp.post("/followup/<int:discharge_id>/call")
def followup_record_call(institution_id: int, discharge_id: int):
    institution = _institution(institution_id)
    discharge = _discharge(institution, discharge_id)
    form = CallOutcomeForm()
    if not form.validate_on_submit():
        flash(gettext("请选择有效的回访结果。"), "error")
        return _render_calls(institution, 400)
    try:
        followup.record_call(discharge, form.outcome.data, nurse=actor())
    except followup.FollowupError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _render_calls(institution, 409)
    db.session.commit()
    outcome = FollowupOutcome(form.outcome.data)
    if outcome == FollowupOutcome.REACHED:
        flash(gettext("已记录：已接通。请录入患者在电话中的回答。"), "success")
        return redirect(url_for("survey_staff.followup_answers", institution_id=institution.id,
                                discharge_id=discharge.id))
    flash(gettext("已记录：%(outcome)s。", outcome=outcome.label), "success")
    return redirect(url_for("survey_staff.followup_calls", institution_id=institution.id))


@bp.route("/followup/<int:discharge_id>/answers", methods=["GET", "POST"])
def followup_answers(institution_id: int, discharge_id: int):
    institution = _institution(institution_id)
    discharge = _discharge(institution, discharge_id)
    version = followup.inpatient_version()
    if version is None:
        flash(gettext("住院患者问卷尚未安装，请联系管理员。"), "error")
        return redirect(url_for("survey_staff.followup_calls", institution_id=institution.id))
    if followup.answerable_call(discharge) is None and request.method == "GET":
        flash(gettext("只有“已接通”且尚未录入答案的回访才能录入答案。"), "warning")
        return redirect(url_for("survey_staff.followup_calls", institution_id=institution.id))
    form = phone_answers_form(version.definition)

    def action():
        return followup.record_phone_answers(discharge, form.submission_id.data or "",
                                             lambda name: _field_value(form, name),
                                             lambda name: _field_list(form, name), nurse=actor())

    def render(form: FlaskForm, status: int):
        if not form.submission_id.data:
            form.submission_id.data = new_submission_id()
        return render_template("survey/followup/answers.html", institution=institution, discharge=discharge,
                               form=form, definition=version.definition,
                               unit_label=followup.unit_label(discharge)), status

    # A refused answer (SubmissionError) names its item's field, a refused call (FollowupError) the whole form.
    return handle_form(form, action, success=gettext("电话回访答案已保存。"),
                       next_url=lambda _stored: url_for("survey_staff.followup_calls", institution_id=institution.id),
                       after=lambda stored: patient.after_commit(stored.alert_id), render=render)


# Discharge list and slips -------------------------------------------------

def _link_state(discharge: Discharge, now) -> str:
    if discharge.link_used_at is not None:
        return "used"
    return "expired" if now >= discharge.link_expires_at else "open"


@bp.get("/followup/discharges")
def followup_discharges(institution_id: int):
    institution = _institution(institution_id)
    scope = department_scope(actor(), institution)
    stmt = (select(Discharge).where(Discharge.institution_id == institution.id)
            .order_by(Discharge.discharge_date.desc(), Discharge.id.desc()))
    if scope is not None:
        stmt = stmt.where(Discharge.department_id.in_(scope))
    page = min(max(request.args.get("page", 1, type=int), 1), 100_000)
    rows = db.paginate(stmt, page=page, per_page=PAGE_SIZE, error_out=False)
    answerable = {d.id for d in rows.items if followup.answerable_call(d) is not None}
    return render_template("survey/followup/discharges.html", institution=institution, page=rows,
                           answerable=answerable, mask_phone=followup.mask_phone, mask_name=followup.mask_name,
                           unit_label=followup.unit_label, link_state=_link_state, now=utcnow())


@bp.get("/followup/<int:discharge_id>/slip")
def followup_slip(institution_id: int, discharge_id: int):
    institution = _institution(institution_id)
    discharge = _discharge(institution, discharge_id)
    url = discharges.discharge_link_url(discharge)
    svg = qr.qr_image(url, kind="svg", box_size=10, border=2)
    data_url = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return render_template("survey/followup/slip.html", institution=institution, discharge=discharge,
                           qr_data_url=data_url, url=url, unit_label=followup.unit_label(discharge),
                           used=discharge.link_used_at is not None)


# Upload ------------------------------------------------------------------

@bp.route("/followup/upload", methods=["GET", "POST"])
def followup_upload(institution_id: int):
    institution = _institution(institution_id)
    form = DischargeUploadForm()
    report = None
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        try:
            report = discharges.import_discharges(institution, upload.filename, upload.stream, actor=actor())
        except ImportFileError as exc:
            db.session.rollback()
            form.file.errors.append(str(exc))
            status = 400
        else:
            if report.ok:
                db.session.commit()
                flash(gettext("导入成功：新增 %(created)d 条，更新 %(updated)d 条。", created=report.created,
                              updated=report.updated), "success")
            else:
                db.session.rollback()
                status = 400
    elif request.method == "POST":
        status = 400
    return render_template("survey/followup/upload.html", institution=institution, form=form, report=report,
                           columns=discharges.COLUMNS), status


@bp.get("/followup/upload/template.csv")
def followup_upload_template(institution_id: int):
    _institution(institution_id)
    return send_table("csv", discharges.template_sheet(), filename="discharges-template.csv")


# Rates -------------------------------------------------------------------

@bp.get("/followup-rates")
def followup_rates(institution_id: int):
    permission = Permission.FOLLOW_UP if can(actor(), Permission.FOLLOW_UP) else Permission.VIEW_SURVEYS
    institution = get_institution_or_404(institution_id, permission)
    form = MonthForm(request.args)
    today = local_today()
    year, month = today.year, today.month
    status = 200
    if not form.validate():
        status = 400
    elif form.month.data:
        year, month = (int(part) for part in form.month.data.split("-"))
    report = followup.followup_rates(institution, year, month,
                                     department_ids=department_scope(actor(), institution))
    months = _recent_months(today, 6)
    return render_template("survey/followup/rates.html", institution=institution, form=form, report=report,
                           months=months), status


def _recent_months(today: date, count: int) -> list[str]:
    months, year, month = [], today.year, today.month
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


# API tokens --------------------------------------------------------------

def _render_tokens(institution: Institution, form: ApiTokenForm, *, clear: str | None = None, status: int = 200):
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.institution_id == institution.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()
    return render_template("survey/followup/api_tokens.html", institution=institution, form=form, tokens=tokens,
                           clear=clear, confirm=ConfirmForm(), scope_labels=api_service.SCOPE_LABELS,
                           now=utcnow()), status


@bp.get("/api-tokens")
def api_tokens(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    return _render_tokens(institution, ApiTokenForm(formdata=None))


@bp.post("/api-tokens")
def api_token_create(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    form = ApiTokenForm()
    if not form.validate_on_submit():
        return _render_tokens(institution, form, status=400)
    try:
        _token, clear = api_service.create_api_token(institution, name=form.name.data, valid_days=form.days(),
                                                     actor=actor())
    except followup.FollowupError as exc:
        db.session.rollback()
        form.name.errors.append(str(exc))
        return _render_tokens(institution, form, status=400)
    db.session.commit()
    # Shown in this response only: not flashed (the session cookie is readable) and never stored in clear.
    response = _render_tokens(institution, ApiTokenForm(formdata=None), clear=clear, status=201)
    return response[0], response[1], {"Cache-Control": "no-store"}


@bp.post("/api-tokens/<int:token_id>/revoke")
def api_token_revoke(institution_id: int, token_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    token = get_owned_or_404(ApiToken, token_id, institution)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    api_service.revoke_api_token(token, actor=actor())
    db.session.commit()
    flash(gettext("令牌已吊销。"), "success")
    return redirect(url_for("survey_staff.api_tokens", institution_id=institution.id))


# The discharge-slip survey (patient) --------------------------------------

@patient.bp.route("/d/<token>", methods=["GET", "POST"])
@patient.limit_submissions
def discharge_survey(token: str):
    discharge, problem = discharges.resolve_link(token)
    if problem == "invalid":
        return public.render_notice(gettext("链接无法识别"),
                                     gettext("请确认扫描的是出院小结上的二维码，或向病区护士求助。"), 404)
    if problem == "used":
        repeat = _repeat_submission(discharge)
        if repeat is not None:
            return repeat
        return public.render_notice(gettext("此链接已使用，感谢您的评价"),
                                     gettext("每份出院小结上的评价链接只能使用一次。您的意见已经收到。"), 200)
    if problem == "expired":
        return public.render_notice(gettext("评价链接已过期"),
                                     gettext("本次住院的评价已截止，感谢您的关注。如有意见或建议，欢迎联系医院患者服务中心。"),
                                     410)
    version = followup.inpatient_version()
    if version is None:
        return public.render_notice(gettext("评价暂未开放"), gettext("问卷正在更新，请稍后再试。"), 503)
    institution = db.session.get(Institution, discharge.institution_id)
    heading, subheading = institution.name, followup.unit_label(discharge)
    context_key = f"dl:{discharge.id}"
    action = url_for("patient.discharge_survey", token=token)
    if request.method == "GET":
        return patient.render_survey(version, action=action, context_key=context_key, heading=heading,
                                     subheading=subheading)
    context = Context(institution_id=discharge.institution_id, channel=Channel.DISCHARGE_LINK, version=version,
                      touchpoint=discharge.touchpoint, department_id=discharge.department_id)
    context.form_problem, context.fill_seconds = patient.read_context_timing(context_key)
    context.device_hash, context.ip_hash = public.client_hashes()
    submission_id = request.form.get("submission_id", "")
    try:
        stored = discharges.use_discharge_link(discharge, context, submission_id, request.form.get,
                                             request.form.getlist)
    except SubmissionError as exc:
        db.session.rollback()
        return patient.render_rejected(version, exc, action=action, context_key=context_key, heading=heading,
                                       subheading=subheading)
    except followup.FollowupError:
        db.session.rollback()
        return public.render_notice(gettext("此链接已使用，感谢您的评价"),
                                     gettext("每份出院小结上的评价链接只能使用一次。您的意见已经收到。"), 200)
    db.session.commit()  # the response and the used link, together, before "received"
    patient.after_commit(stored.alert_id)
    return redirect(url_for("patient.thanks", submission_id=stored.response.submission_id), code=303)


def _repeat_submission(discharge: Discharge):
    """A retried POST of the form that used the link goes to its thank-you page."""
    if request.method != "POST":
        return None

    response = find_by_submission_id(request.form.get("submission_id", ""))
    if response is None or response.channel != Channel.DISCHARGE_LINK.value \
            or response.institution_id != discharge.institution_id:
        return None
    return redirect(url_for("patient.thanks", submission_id=response.submission_id), code=303)
