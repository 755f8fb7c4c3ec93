"""Staff pages for touchpoint QR codes: list, images, posters, rotation, template choice."""
from __future__ import annotations

import io

from flask import abort, flash, make_response, redirect, render_template, request, send_file, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from wtforms import SelectField, SubmitField
from wtforms.validators import InputRequired

from core.errors import render_error
from core.extensions import db
from core.forms import FlaskForm
from core.views import handle_form
from organisation.forms import ConfirmForm, int_or_none
from organisation.models import Department, Institution, Touchpoint
from organisation.scope import Permission, can, department_scope, get_institution_or_404, get_owned_or_404
from organisation.services import departments_for
from survey import posters, qr
from survey.blueprints import staff_bp as bp
from survey.models import Audience, SurveyTemplate, TouchpointCode
from survey.versioning import templates_for


class CodeTemplateForm(FlaskForm):
    template_id = SelectField(_l("问卷"), coerce=int, validators=[InputRequired()])
    submit = SubmitField(_l("保存"))


class DepartmentFilterForm(FlaskForm):
    class Meta:
        csrf = False

    department_id = SelectField(_l("科室"), coerce=int_or_none)


def actor():
    return current_user._get_current_object()


def _touchpoint_or_404(institution: Institution, touchpoint_id: int) -> Touchpoint:
    """A touchpoint of ``institution`` inside the viewer's department scope."""
    touchpoint = get_owned_or_404(Touchpoint, touchpoint_id, institution)
    scope = department_scope(actor(), institution)
    if scope is not None and touchpoint.department_id not in scope:
        abort(404)
    return touchpoint


def _department_or_404(institution: Institution, department_id: int) -> Department:
    department = get_owned_or_404(Department, department_id, institution)
    scope = department_scope(actor(), institution)
    if scope is not None and department.id not in scope:
        abort(404)
    return department


def _live_code_or_404(touchpoint: Touchpoint) -> TouchpointCode:
    code = qr.active_code(touchpoint)
    if code is None:
        abort(make_response(render_error(404, gettext("该服务点尚未生成二维码，请先生成。"))))
    return code


def code_templates(institution: Institution) -> list[SurveyTemplate]:
    """Templates a touchpoint code may open: patient-facing, active, with a published version."""
    return [t for t in templates_for(institution)
            if t.audience != Audience.STAFF.value and t.active and t.published is not None]


def _template_label(template: SurveyTemplate) -> str:
    suffix = gettext("（内置）") if template.is_builtin else ""
    return f"{template.name}{suffix}"


def poster_item(institution: Institution, code: TouchpointCode) -> posters.PosterItem:
    touchpoint = code.touchpoint
    return posters.PosterItem(institution_name=institution.name, touchpoint_name=touchpoint.name,
                              url=qr.patient_url(code), location=touchpoint.location or "")


def _pdf(data: bytes, filename: str):
    response = send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=False,
                         download_name=filename)
    response.headers["Cache-Control"] = "no-store"
    return response


# List --------------------------------------------------------------------

@bp.get("/codes")
def codes(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    scope = department_scope(actor(), institution)
    departments = [d for d in departments_for(institution) if scope is None or d.id in scope]
    form = DepartmentFilterForm(request.args)
    form.department_id.choices = [("", gettext("全部科室"))] + [(d.id, d.name) for d in departments]
    if not form.validate():
        return render_error(400, gettext("所选科室无效。"))
    department = _department_or_404(institution, form.department_id.data) if form.department_id.data else None

    stmt = select(Touchpoint).where(Touchpoint.institution_id == institution.id)
    if scope is not None:
        stmt = stmt.where(Touchpoint.department_id.in_(scope or {-1}))
    if department is not None:
        stmt = stmt.where(Touchpoint.department_id == department.id)
    touchpoints = list(db.session.scalars(stmt.order_by(Touchpoint.active.desc(), Touchpoint.code)))
    ids = [t.id for t in touchpoints] or [-1]
    live = {c.touchpoint_id: c for c in db.session.scalars(select(TouchpointCode).where(
        TouchpointCode.touchpoint_id.in_(ids), TouchpointCode.retired_at.is_(None)))}
    retired = dict(db.session.execute(select(TouchpointCode.touchpoint_id, func.count()).where(
        TouchpointCode.touchpoint_id.in_(ids), TouchpointCode.retired_at.is_not(None))
        .group_by(TouchpointCode.touchpoint_id)).all())
    rows = [{"touchpoint": t, "code": live.get(t.id), "retired": retired.get(t.id, 0),
             "url": qr.patient_url(live[t.id]) if t.id in live else None} for t in touchpoints]
    missing = sum(1 for r in rows if r["code"] is None and r["touchpoint"].active)
    return render_template("survey/codes/list.html", institution=institution, rows=rows, form=form,
                           department=department, missing=missing, confirm=ConfirmForm(),
                           can_manage=can(actor(), Permission.MANAGE_SURVEYS, institution))


# Images and print --------------------------------------------------------

@bp.get("/codes/<int:touchpoint_id>/qr.<kind>")
def code_image(institution_id: int, touchpoint_id: int, kind: str):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    touchpoint = _touchpoint_or_404(institution, touchpoint_id)
    if kind not in ("png", "svg"):
        abort(404)
    code = _live_code_or_404(touchpoint)
    data = qr.qr_image(qr.patient_url(code), kind=kind, box_size=20 if kind == "png" else 10)
    mimetype = "image/png" if kind == "png" else "image/svg+xml"
    return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True,
                     download_name=f"qr-{touchpoint.code}-{code.code}.{kind}")


@bp.get("/codes/<int:touchpoint_id>/<any(poster, tent):kind>.pdf")
def code_print(institution_id: int, touchpoint_id: int, kind: str):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    touchpoint = _touchpoint_or_404(institution, touchpoint_id)
    code = _live_code_or_404(touchpoint)
    render = posters.poster_pdf if kind == "poster" else posters.tent_pdf
    data = render([poster_item(institution, code)], title=touchpoint.name)
    return _pdf(data, f"{kind}-{touchpoint.code}.pdf")


@bp.get("/codes/departments/<int:department_id>/<any(poster, tent):kind>.pdf")
def department_print(institution_id: int, department_id: int, kind: str):
    institution = get_institution_or_404(institution_id, Permission.VIEW_SURVEYS)
    department = _department_or_404(institution, department_id)
    codes_ = list(db.session.scalars(
        select(TouchpointCode).join(Touchpoint, Touchpoint.id == TouchpointCode.touchpoint_id)
        .where(Touchpoint.institution_id == institution.id, Touchpoint.department_id == department.id,
               Touchpoint.active.is_(True), TouchpointCode.retired_at.is_(None))
        .order_by(Touchpoint.code)))
    if not codes_:
        return render_error(404, gettext("该科室没有已生成二维码的启用服务点。"))
    render = posters.poster_pdf if kind == "poster" else posters.tent_pdf
    data = render([poster_item(institution, c) for c in codes_], title=department.name)
    return _pdf(data, f"{kind}s-{department.code}.pdf")


# Changes -----------------------------------------------------------------

@bp.route("/codes/<int:touchpoint_id>/rotate", methods=["GET", "POST"])
def code_rotate(institution_id: int, touchpoint_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    touchpoint = _touchpoint_or_404(institution, touchpoint_id)
    code = _live_code_or_404(touchpoint)
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_error(400, gettext("页面已过期，请刷新后重新提交。"))
        qr.rotate_code(touchpoint, actor=actor())
        db.session.commit()
        flash(gettext("“%(name)s”的二维码已更换，旧二维码已停用。请打印新的海报替换旧的。", name=touchpoint.name),
              "success")
        return redirect(url_for("survey_staff.codes", institution_id=institution.id))
    return render_template("survey/codes/rotate.html", institution=institution, touchpoint=touchpoint,
                           code=code, form=form)


@bp.route("/codes/<int:touchpoint_id>/template", methods=["GET", "POST"])
def code_template(institution_id: int, touchpoint_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    touchpoint = _touchpoint_or_404(institution, touchpoint_id)
    code = _live_code_or_404(touchpoint)
    choices = {t.id: t for t in code_templates(institution)}
    form = CodeTemplateForm(template_id=code.template_id) if request.method == "GET" else CodeTemplateForm()
    form.template_id.choices = [(t.id, _template_label(t)) for t in choices.values()]

    def action():
        return qr.set_template(code, choices[form.template_id.data], actor=actor())

    return handle_form(form, action, success=gettext("问卷已更换，已张贴的二维码继续有效。"),
                       next_url=lambda _code: url_for("survey_staff.codes", institution_id=institution.id),
                       template="survey/codes/template.html", institution=institution, touchpoint=touchpoint,
                       code=code)


@bp.post("/codes/<int:touchpoint_id>/issue")
def code_issue(institution_id: int, touchpoint_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    touchpoint = _touchpoint_or_404(institution, touchpoint_id)
    if not ConfirmForm().validate_on_submit():
        return render_error(400, gettext("页面已过期，请刷新后重新提交。"))
    if not touchpoint.active:
        return render_error(400, gettext("该服务点已停用，不能生成二维码。"))
    qr.ensure_code(touchpoint, actor=actor())
    db.session.commit()
    flash(gettext("已为“%(name)s”生成二维码。", name=touchpoint.name), "success")
    return redirect(url_for("survey_staff.codes", institution_id=institution.id))


@bp.post("/codes/issue-missing")
def codes_issue_missing(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_SURVEYS)
    if not ConfirmForm().validate_on_submit():
        return render_error(400, gettext("页面已过期，请刷新后重新提交。"))
    live = select(TouchpointCode.touchpoint_id).where(TouchpointCode.retired_at.is_(None))
    touchpoints = list(db.session.scalars(select(Touchpoint).where(
        Touchpoint.institution_id == institution.id, Touchpoint.active.is_(True), Touchpoint.id.not_in(live))
        .order_by(Touchpoint.code)))
    for touchpoint in touchpoints:
        qr.ensure_code(touchpoint, actor=actor())
    db.session.commit()
    flash(gettext("已为 %(n)d 个服务点生成二维码。", n=len(touchpoints)), "success")
    return redirect(url_for("survey_staff.codes", institution_id=institution.id))
