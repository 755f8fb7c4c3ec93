"""Staff pages: touchpoint results, responses and exports, templates, alerts, settings."""
from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from core import tabular
from core.audit import record
from core.clock import local_today
from core.extensions import db
from core.views import handle_form, paginate, send_table
from organisation.forms import ConfirmForm
from organisation.models import Department, Institution, Touchpoint
from organisation.scope import Permission, can, department_scope, get_institution_or_404, get_owned_or_404
from organisation.services import departments_for
from survey import alerts as alert_service
from survey import definitions, editor, results, versioning
from survey.blueprints import staff_bp as bp
from survey.forms import (
    ITEM_TYPE_CHOICES,
    AlertCloseForm,
    CopyTemplateForm,
    DraftForm,
    ResponseFilterForm,
    SettingsForm,
)
from survey.models import AlertStatus, Channel, ContactRequest, RecoveryAlert, SurveyResponse, SurveyTemplate
from survey.submission import settings_for


def actor():
    return current_user._get_current_object()


def today() -> date:
    return local_today()


# Touchpoint results ----------------------------------------------------

@bp.get("/")
def overview(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    scope = department_scope(actor(), institution)
    summaries = results.touchpoint_summaries(institution, today=today(), departments=scope)
    open_alerts = alert_service.open_alert_count(institution, scope)
    return render_template("survey/staff/overview.html", institution=institution, summaries=summaries,
                           open_alerts=open_alerts, today=today())


# Responses -------------------------------------------------------------

def _filter_form(institution: Institution, scope: set[int] | None) -> ResponseFilterForm:
    form = ResponseFilterForm(request.args)
    departments = [d for d in departments_for(institution) if scope is None or d.id in scope]
    form.department_id.choices = [("", gettext("全部"))] + [(d.id, d.name) for d in departments]
    tps = db.session.scalars(select(Touchpoint).where(Touchpoint.institution_id == institution.id)
                             .order_by(Touchpoint.code)).all()
    form.touchpoint_id.choices = [("", gettext("全部"))] + [
        (t.id, t.name) for t in tps if scope is None or t.department_id in scope]
    form.template_id.choices = [("", gettext("全部"))] + [
        (t.id, t.name) for t in versioning.templates_for(institution)]
    form.channel.choices = [("", gettext("全部"))] + [c for c in Channel.choices() if c[0] != Channel.STAFF_TOKEN]
    return form


def _response_filter(form: ResponseFilterForm, scope: set[int] | None) -> results.ResponseFilter:
    f = results.ResponseFilter(departments=scope)
    if not form.validate():
        return f
    f.department_id = form.department_id.data
    f.touchpoint_id = form.touchpoint_id.data
    f.template_id = form.template_id.data
    f.channel = form.channel.data or None
    f.date_from = date.fromisoformat(form.date_from.data) if form.date_from.data else None
    f.date_to = date.fromisoformat(form.date_to.data) if form.date_to.data else None
    if form.score.data == "low":
        f.max_score = 50
    elif form.score.data == "high":
        f.min_score = 75
    f.flagged = form.flagged.data or "exclude"
    return f


@bp.get("/responses")
def responses(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    scope = department_scope(actor(), institution)
    form = _filter_form(institution, scope)
    stmt = results.filtered(institution, _response_filter(form, scope))
    page = paginate(stmt)
    names = _names(institution)
    status = 400 if form.errors else 200
    # Only the filters go into the download links: other arguments (url_for's _anchor, _external …) would
    # rewrite the link or collide with its own arguments.
    export_args = {name: value for name, value in request.args.items() if name in form._fields}
    return render_template("survey/staff/responses.html", institution=institution, form=form, page=page,
                           names=names, flag_labels=results.FLAG_LABELS, export_args=export_args), status


def _names(institution: Institution) -> dict[str, dict[int, str]]:
    return {
        "departments": dict(db.session.execute(select(Department.id, Department.name)
                                               .where(Department.institution_id == institution.id)).all()),
        "touchpoints": dict(db.session.execute(select(Touchpoint.id, Touchpoint.name)
                                               .where(Touchpoint.institution_id == institution.id)).all()),
    }


@bp.get("/responses/<int:response_id>")
def response_detail(institution_id: int, response_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    response = get_owned_or_404(SurveyResponse, response_id, institution)
    if response.channel == Channel.STAFF_TOKEN:
        abort(404)  # anonymous staff answers are shown only as group results
    scope = department_scope(actor(), institution)
    if scope is not None and response.department_id not in scope:
        abort(404)
    return render_template("survey/staff/response.html", institution=institution, response=response,
                           definition=response.version.definition, names=_names(institution),
                           flag_labels=results.FLAG_LABELS)


@bp.get("/responses/export.<fmt>")
def export_responses(institution_id: int, fmt: str):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    if fmt not in tabular.FORMATS:
        abort(404)
    scope = department_scope(actor(), institution)
    form = _filter_form(institution, scope)
    if request.args and not form.validate():
        abort(400)
    stmt = results.filtered(institution, _response_filter(form, scope))
    filename = f"survey-responses-{institution.id}-{today():%Y%m%d}.{fmt}"
    return send_table(fmt, results.export_sheets(institution, stmt), filename=filename)


# Templates -------------------------------------------------------------

def _template_or_404(institution: Institution, template_id: int) -> SurveyTemplate:
    template = db.session.get(SurveyTemplate, template_id)
    if template is None or template.institution_id not in (None, institution.id):
        abort(404)
    return template


@bp.get("/templates")
def templates(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    return render_template("survey/staff/templates.html", institution=institution,
                           templates=versioning.templates_for(institution))


@bp.get("/templates/<int:template_id>")
def template_detail(institution_id: int, template_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    template = _template_or_404(institution, template_id)
    version_id = request.args.get("version", type=int)
    shown = next((v for v in template.versions if v.id == version_id), None) or template.published or template.draft
    copy_form = CopyTemplateForm(data={"code": f"{template.code}_{institution.id}",
                                       "name": gettext("%(name)s（本院）", name=template.name)})
    return render_template("survey/staff/template.html", institution=institution, template=template, shown=shown,
                           copy_form=copy_form, confirm=ConfirmForm(), item_types=dict(ITEM_TYPE_CHOICES))


@bp.post("/templates/<int:template_id>/copy")
def template_copy(institution_id: int, template_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    source = _template_or_404(institution, template_id)
    form = CopyTemplateForm()

    def action():
        return versioning.copy_template(source, institution, code=form.code.data, name=form.name.data.strip(),
                                        actor=actor())

    return handle_form(form, action, success=gettext("已复制为本院问卷，可编辑草稿后发布。"),
                       next_url=lambda t: url_for("survey_staff.template_edit", institution_id=institution.id,
                                                  template_id=t.id),
                       template="organisation/form.html", title=gettext("复制问卷"), institution=institution)


@bp.post("/templates/<int:template_id>/draft")
def template_start_draft(institution_id: int, template_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    template = _template_or_404(institution, template_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        versioning.start_draft(template, actor=actor())
    except versioning.VersionError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(url_for("survey_staff.template_detail", institution_id=institution.id, template_id=template.id))
    db.session.commit()
    return redirect(url_for("survey_staff.template_edit", institution_id=institution.id, template_id=template.id))


@bp.route("/templates/<int:template_id>/edit", methods=["GET", "POST"])
def template_edit(institution_id: int, template_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    template = _template_or_404(institution, template_id)
    if template.is_builtin:
        flash(gettext("内置问卷不能直接修改，请先复制为本院问卷。"), "warning")
        return redirect(url_for("survey_staff.template_detail", institution_id=institution.id, template_id=template.id))
    if request.method == "GET":
        draft = template.draft
        if draft is None:
            # Looking changes nothing: the published version is shown to read, with the button that starts a draft.
            return render_template("survey/staff/template_readonly.html", institution=institution, template=template,
                                   shown=template.published, confirm=ConfirmForm(),
                                   item_types=dict(ITEM_TYPE_CHOICES))
        form = DraftForm(data=editor.definition_to_form(draft.definition))
    else:
        form = DraftForm()
    status = 200
    row_action = request.form.get(editor.ROW_BUTTON) if request.method == "POST" else None
    if row_action is not None:
        # A row button: the same form with one row added, removed or moved; nothing is saved yet.
        try:
            form = editor.apply_row_action(form, row_action)
        except editor.RowActionError as exc:
            form.form_errors.append(str(exc))
            status = 400
    elif form.validate_on_submit():
        try:
            versioning.save_draft(template, editor.form_to_definition(form), actor=actor())
        except versioning.VersionError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
            status = 400
        else:
            db.session.commit()
            editor.add_blank_items(form, form.add_items.data or 0)
            flash(gettext("草稿已保存。"), "success")
            if not form.add_items.data:
                return redirect(url_for("survey_staff.template_detail", institution_id=institution.id,
                                        template_id=template.id, version=template.draft.id))
    elif request.method == "POST":
        status = 400
    return render_template("survey/staff/template_edit.html", institution=institution, template=template,
                           form=form, row_button=editor.ROW_BUTTON,
                           standard_types=[t for t in definitions.ITEM_TYPES if definitions.standard_options(t)],
                           choice_types=definitions.CHOICE_TYPES), status


@bp.post("/templates/<int:template_id>/publish")
def template_publish(institution_id: int, template_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    template = _template_or_404(institution, template_id)
    if template.is_builtin or not ConfirmForm().validate_on_submit():
        abort(400)
    draft = template.draft
    if draft is None:
        flash(gettext("没有待发布的草稿。"), "warning")
    else:
        try:
            versioning.publish_version(draft, actor=actor())
        except versioning.VersionError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(gettext("第 %(n)d 版已发布，新的评价将使用此版本。", n=draft.number), "success")
    return redirect(url_for("survey_staff.template_detail", institution_id=institution.id, template_id=template.id))


@bp.get("/templates/<int:template_id>/versions/<int:version_id>/preview")
def template_preview(institution_id: int, template_id: int, version_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    template = _template_or_404(institution, template_id)
    version = next((v for v in template.versions if v.id == version_id), None) or abort(404)
    return render_template("survey/patient/form.html", definition=version.definition, action="#",
                           heading=gettext("预览：%(name)s", name=template.name), subheading=institution.name,
                           values={}, errors={}, submission_id="preview", form_token="",
                           window_mode=len(version.definition["items"]) <= 5)


# Alerts ----------------------------------------------------------------

@bp.get("/alerts")
def alerts(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    status = request.args.get("status", "open")
    page = paginate(alert_service.alerts_statement(institution, department_scope(actor(), institution), status))
    return render_template("survey/staff/alerts.html", institution=institution, page=page, status=status,
                           statuses=AlertStatus, reason_label=alert_service.reason_label)


def _alert_or_404(institution: Institution, alert_id: int) -> RecoveryAlert:
    alert = get_owned_or_404(RecoveryAlert, alert_id, institution)
    scope = department_scope(actor(), institution)
    if scope is not None and alert.department_id not in scope:
        abort(404)
    return alert


@bp.route("/alerts/<int:alert_id>", methods=["GET", "POST"])
def alert_detail(institution_id: int, alert_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    alert = _alert_or_404(institution, alert_id)
    can_handle = can(actor(), Permission.HANDLE_ALERTS, institution)
    if request.method == "POST" and not can_handle:
        abort(403)

    def render(form: AlertCloseForm, status: int):
        contact = db.session.scalar(select(ContactRequest).where(ContactRequest.response_id == alert.response_id)) \
            if can_handle else None
        return render_template("survey/staff/alert.html", institution=institution, alert=alert, form=form,
                               confirm=ConfirmForm(), contact=contact, definition=alert.response.version.definition,
                               reason_label=alert_service.reason_label, can_handle=can_handle,
                               same_device=alert_service.same_device_ratings(alert),
                               flag_labels=results.FLAG_LABELS), status

    form = AlertCloseForm()
    return handle_form(form, lambda: alert_service.close_alert(alert, form.note.data, actor=actor()),
                       success=gettext("提醒已关闭。"),
                       next_url=lambda _alert: url_for("survey_staff.alerts", institution_id=institution.id),
                       render=render)


@bp.post("/alerts/<int:alert_id>/acknowledge")
def alert_acknowledge(institution_id: int, alert_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    alert = _alert_or_404(institution, alert_id)
    if not can(actor(), Permission.HANDLE_ALERTS, institution):
        abort(403)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        alert_service.acknowledge_alert(alert, actor=actor())
    except alert_service.AlertError as exc:
        flash(str(exc), "warning")
    else:
        db.session.commit()
        flash(gettext("已确认，请跟进处理后关闭。"), "success")
    return redirect(url_for("survey_staff.alert_detail", institution_id=institution.id, alert_id=alert.id))


# Settings --------------------------------------------------------------

@bp.route("/settings", methods=["GET", "POST"])
def settings(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    current = settings_for(institution.id)
    form = SettingsForm(obj=current)

    def action():
        changed = {}
        for name in ("alert_threshold", "followup_days", "contact_retention_days", "link_valid_days",
                     "min_fill_seconds", "repeat_window_minutes", "staff_min_group"):
            new = getattr(form, name).data
            if getattr(current, name) != new:
                changed[name] = [getattr(current, name), new]
                setattr(current, name, new)
        if changed:
            record(actor(), "survey_settings.update", current, changed)
        return current

    return handle_form(form, action, success=gettext("设置已保存。"),
                       next_url=lambda s: url_for("survey_staff.settings", institution_id=institution.id),
                       template="organisation/form.html", title=gettext("评价设置"), institution=institution)
