"""Organisation admin: departments and touchpoints of an institution."""
from __future__ import annotations

from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select

from core.views import handle_form, paginate
from organisation import services
from organisation.forms import (
    ConfirmForm,
    DepartmentForm,
    TouchpointForm,
)
from organisation.models import Department, Institution, Touchpoint
from organisation.scope import (
    Permission,
    can,
    get_institution_or_404,
    get_owned_or_404,
)
from organisation.views import actor, bp, search_filter, toggle_active

# Departments -----------------------------------------------------------

def department_choices(institution: Institution, *, blank: str | None = None, exclude: int | None = None):
    """The institution's departments for a select box, after a first ``blank`` choice (no department) if given."""
    rows = services.departments_for(institution, active_only=False)
    choices = [(d.id, gettext("%(name)s（%(code)s）", name=d.name, code=d.code)) for d in rows if d.id != exclude]
    return ([("", blank)] if blank is not None else []) + choices


@bp.get("/i/<int:institution_id>/departments")
def departments(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_ORG)
    q = request.args.get("q", "").strip()
    stmt = select(Department).where(Department.institution_id == institution.id).order_by(Department.code)
    page = paginate(search_filter(stmt, q, Department.name, Department.code))
    return render_template("organisation/departments.html", institution=institution, page=page, q=q,
                           toggle=ConfirmForm(), can_manage=can(actor(), Permission.MANAGE_ORG, institution))


def _parent(institution: Institution, parent_id: int | None) -> Department | None:
    return get_owned_or_404(Department, parent_id, institution) if parent_id else None


@bp.route("/i/<int:institution_id>/departments/new", methods=["GET", "POST"])
def department_new(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    form = DepartmentForm()
    form.parent_id.choices = department_choices(institution, blank=gettext("（无）"))

    def action():
        return services.create_department(institution, code=form.code.data.strip(), name=form.name.data.strip(),
                                          kind=form.kind.data, parent=_parent(institution, form.parent_id.data),
                                          actor=actor())

    return handle_form(form, action, success=gettext("科室已创建。"),
                       next_url=lambda d: url_for("org.departments", institution_id=institution.id),
                       template="organisation/form.html", title=gettext("新建科室"), institution=institution)


@bp.route("/i/<int:institution_id>/departments/<int:department_id>/edit", methods=["GET", "POST"])
def department_edit(institution_id: int, department_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    department = get_owned_or_404(Department, department_id, institution)
    form = DepartmentForm(obj=department)
    form.parent_id.choices = department_choices(institution, blank=gettext("（无）"), exclude=department.id)

    def action():
        return services.update_department(department, institution, actor=actor(),
                                          parent=_parent(institution, form.parent_id.data),
                                          code=form.code.data.strip(), name=form.name.data.strip(),
                                          kind=form.kind.data)

    return handle_form(form, action, success=gettext("科室已保存。"),
                       next_url=lambda d: url_for("org.departments", institution_id=institution.id),
                       template="organisation/form.html", title=gettext("编辑科室：%(name)s", name=department.name),
                       institution=institution)


@bp.post("/i/<int:institution_id>/departments/<int:department_id>/toggle")
def department_toggle(institution_id: int, department_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    department = get_owned_or_404(Department, department_id, institution)
    return toggle_active(department, url_for("org.departments", institution_id=institution.id))


# Touchpoints -----------------------------------------------------------

@bp.get("/i/<int:institution_id>/touchpoints")
def touchpoints(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_ORG)
    q = request.args.get("q", "").strip()
    stmt = (select(Touchpoint).where(Touchpoint.institution_id == institution.id)
            .order_by(Touchpoint.department_id, Touchpoint.code))
    page = paginate(search_filter(stmt, q, Touchpoint.name, Touchpoint.code))
    return render_template("organisation/touchpoints.html", institution=institution, page=page, q=q,
                           toggle=ConfirmForm(), can_manage=can(actor(), Permission.MANAGE_ORG, institution))


def _touchpoint_form(institution: Institution, obj: Touchpoint | None = None) -> TouchpointForm:
    form = TouchpointForm(obj=obj)
    form.department_id.choices = department_choices(institution, blank=gettext("请选择科室"))
    return form


def _touchpoint_values(form: TouchpointForm, institution: Institution) -> dict[str, Any]:
    return {"code": form.code.data.strip(), "name": form.name.data.strip(), "kind": form.kind.data,
            "department": get_owned_or_404(Department, form.department_id.data, institution),
            "location": (form.location.data or "").strip()}


@bp.route("/i/<int:institution_id>/touchpoints/new", methods=["GET", "POST"])
def touchpoint_new(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    form = _touchpoint_form(institution)
    return handle_form(
        form, lambda: services.create_touchpoint(institution, actor=actor(), **_touchpoint_values(form, institution)),
        success=gettext("服务点已创建。"),
        next_url=lambda t: url_for("org.touchpoints", institution_id=institution.id),
        template="organisation/form.html", title=gettext("新建服务点"), institution=institution)


@bp.route("/i/<int:institution_id>/touchpoints/<int:touchpoint_id>/edit", methods=["GET", "POST"])
def touchpoint_edit(institution_id: int, touchpoint_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    touchpoint = get_owned_or_404(Touchpoint, touchpoint_id, institution)
    form = _touchpoint_form(institution, touchpoint)

    def action():
        values = _touchpoint_values(form, institution)
        values["department_id"] = values.pop("department").id
        return services.update_touchpoint(touchpoint, institution, actor=actor(), **values)

    return handle_form(form, action, success=gettext("服务点已保存。"),
                       next_url=lambda t: url_for("org.touchpoints", institution_id=institution.id),
                       template="organisation/form.html", title=gettext("编辑服务点：%(name)s", name=touchpoint.name),
                       institution=institution)


@bp.post("/i/<int:institution_id>/touchpoints/<int:touchpoint_id>/toggle")
def touchpoint_toggle(institution_id: int, touchpoint_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    touchpoint = get_owned_or_404(Touchpoint, touchpoint_id, institution)
    return toggle_active(touchpoint, url_for("org.touchpoints", institution_id=institution.id))
