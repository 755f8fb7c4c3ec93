"""Organisation admin: regions, institutions, departments, touchpoints, staff, audit."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from core.audit import AuditEntry
from core.clock import local_day_bounds
from core.extensions import db
from core.views import handle_form, paginate
from organisation import importer, services
from organisation.forms import (
    AuditFilterForm,
    ConfirmForm,
    DepartmentForm,
    ImportForm,
    InstitutionForm,
    RegionForm,
    StaffForm,
    TouchpointForm,
)
from organisation.models import Department, Institution, Region, Role, StaffUser, Touchpoint
from organisation.scope import (
    Permission,
    can,
    get_institution_or_404,
    get_owned_or_404,
    require,
    scoped,
    visible_institution_ids,
)

bp = Blueprint("org", __name__)


@bp.before_request
@login_required
def _staff_only():
    return None


def actor():
    return current_user._get_current_object()


def toggle_active(obj: Any, next_url: str):
    """POST-only (de)activation shared by every admin list."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    services.set_active(obj, not obj.active, actor=actor())
    db.session.commit()
    flash(gettext("已停用。") if not obj.active else gettext("已启用。"), "success")
    return redirect(next_url)


def search_filter(stmt, q: str, *columns):
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(*(c.ilike(like) for c in columns)))
    return stmt


# Home ------------------------------------------------------------------

@bp.get("/")
def home():
    user = actor()
    if user.institution_id is not None:
        return redirect(url_for("org.institution_overview", institution_id=user.institution_id))
    return redirect(url_for("org.institutions"))


# Regions (platform admin) -----------------------------------------------

def region_choices(include_blank: bool, user=None) -> list[tuple[Any, str]]:
    stmt = select(Region).order_by(Region.path)
    if user is not None and not user.has_role(Role.PLATFORM_ADMIN) and user.region is not None:
        stmt = stmt.where(Region.path.startswith(user.region.path))
    regions = list(db.session.scalars(stmt))
    choices = [(r.id, "　" * r.depth + r.name) for r in regions]
    return ([(None, gettext("（无）"))] if include_blank else []) + choices


@bp.get("/admin/regions")
@require(Permission.MANAGE_REGIONS)
def regions():
    rows = db.session.scalars(select(Region).order_by(Region.path)).all()
    counts = dict(db.session.execute(select(Institution.region_id, func.count()).group_by(Institution.region_id)).all())
    return render_template("organisation/regions.html", regions=rows, counts=counts, toggle=ConfirmForm())


@bp.route("/admin/regions/new", methods=["GET", "POST"])
@require(Permission.MANAGE_REGIONS)
def region_new():
    form = RegionForm()
    form.parent_id.choices = region_choices(True)

    def action():
        parent = db.session.get(Region, form.parent_id.data) if form.parent_id.data else None
        return services.create_region(code=form.code.data, name=form.name.data, level=form.level.data,
                                      parent=parent, actor=actor())

    return handle_form(form, action, success=gettext("区域已创建。"), next_url=lambda r: url_for("org.regions"),
                       template="organisation/form.html", title=gettext("新建区域"))


@bp.route("/admin/regions/<int:region_id>/edit", methods=["GET", "POST"])
@require(Permission.MANAGE_REGIONS)
def region_edit(region_id: int):
    region = db.session.get(Region, region_id) or abort(404)
    form = RegionForm(obj=region)
    del form.parent_id  # a region's place in the tree is fixed once institutions hang off it

    def action():
        return services.update_region(region, code=form.code.data, name=form.name.data, level=form.level.data,
                                      actor=actor())

    return handle_form(form, action, success=gettext("区域已保存。"), next_url=lambda r: url_for("org.regions"),
                       template="organisation/form.html", title=gettext("编辑区域：%(name)s", name=region.name))


@bp.post("/admin/regions/<int:region_id>/toggle")
@require(Permission.MANAGE_REGIONS)
def region_toggle(region_id: int):
    region = db.session.get(Region, region_id) or abort(404)
    return toggle_active(region, url_for("org.regions"))


# Institutions ----------------------------------------------------------

@bp.get("/admin/institutions")
def institutions():
    user = actor()
    if not (can(user, Permission.MANAGE_INSTITUTIONS) or can(user, Permission.VIEW_ORG)):
        abort(403)
    q = request.args.get("q", "").strip()
    stmt = scoped(select(Institution), Institution.id, user).order_by(Institution.level, Institution.name)
    stmt = search_filter(stmt, q, Institution.name, Institution.registration_code)
    page = paginate(stmt)
    return render_template("organisation/institutions.html", page=page, q=q, toggle=ConfirmForm(),
                           can_manage=can(user, Permission.MANAGE_INSTITUTIONS))


def institution_form(obj: Institution | None = None) -> InstitutionForm:
    form = InstitutionForm(obj=obj)
    form.region_id.choices = region_choices(False, actor())
    return form


def check_region_allowed(region_id: int) -> Region:
    region = db.session.get(Region, region_id)
    allowed = {value for value, _label in region_choices(False, actor())}
    if region is None or region_id not in allowed:
        abort(404)
    return region


def institution_values(form: InstitutionForm) -> dict[str, Any]:
    check_region_allowed(form.region_id.data)
    return {f: getattr(form, f).data.strip() if isinstance(getattr(form, f).data, str) else getattr(form, f).data
            for f in ("name", "short_name", "registration_code", "level", "grade", "category", "region_id")}


@bp.route("/admin/institutions/new", methods=["GET", "POST"])
@require(Permission.MANAGE_INSTITUTIONS)
def institution_new():
    form = institution_form()
    return handle_form(
        form, lambda: services.create_institution(actor=actor(), **institution_values(form)),
        success=gettext("机构已创建。"),
        next_url=lambda inst: url_for("org.institution_overview", institution_id=inst.id),
        template="organisation/form.html", title=gettext("新建机构"))


@bp.route("/i/<int:institution_id>/edit", methods=["GET", "POST"])
def institution_edit(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_INSTITUTIONS)
    form = institution_form(institution)
    return handle_form(
        form, lambda: services.update_institution(institution, actor=actor(), **institution_values(form)),
        success=gettext("机构信息已保存。"),
        next_url=lambda inst: url_for("org.institution_overview", institution_id=inst.id),
        template="organisation/form.html", title=gettext("编辑机构：%(name)s", name=institution.name),
        institution=institution)


@bp.post("/i/<int:institution_id>/toggle")
def institution_toggle(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_INSTITUTIONS)
    return toggle_active(institution, url_for("org.institutions"))


@bp.get("/i/<int:institution_id>/")
def institution_overview(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_ORG) \
        if not _is_own_institution(institution_id) else db.session.get(Institution, institution_id)
    counts = {
        "departments": _count(Department, institution),
        "touchpoints": _count(Touchpoint, institution),
        "staff": db.session.scalar(select(func.count()).select_from(StaffUser)
                                   .where(StaffUser.institution_id == institution.id)),
    }
    return render_template("organisation/overview.html", institution=institution, counts=counts)


def _is_own_institution(institution_id: int) -> bool:
    """Every staff member may open their own institution's landing page."""
    return actor().institution_id == institution_id


def _count(model, institution: Institution) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.institution_id == institution.id))


# Departments -----------------------------------------------------------

def department_choices(institution: Institution, *, blank: bool, exclude: int | None = None):
    rows = services.departments_for(institution, active_only=False)
    choices = [(d.id, gettext("%(name)s（%(code)s）", name=d.name, code=d.code)) for d in rows if d.id != exclude]
    return ([(None, gettext("（无）"))] if blank else []) + choices


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
    form.parent_id.choices = department_choices(institution, blank=True)

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
    form.parent_id.choices = department_choices(institution, blank=True, exclude=department.id)

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
    form.department_id.choices = department_choices(institution, blank=False)
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


# Staff -----------------------------------------------------------------

@bp.get("/i/<int:institution_id>/staff")
def staff(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_ORG)
    q = request.args.get("q", "").strip()
    stmt = select(StaffUser).where(StaffUser.institution_id == institution.id).order_by(StaffUser.username)
    page = paginate(search_filter(stmt, q, StaffUser.username, StaffUser.display_name))
    return render_template("organisation/staff.html", institution=institution, page=page, q=q,
                           toggle=ConfirmForm(), can_manage=can(actor(), Permission.MANAGE_ORG, institution),
                           now=services.utcnow())


def _staff_form(institution: Institution | None, obj: StaffUser | None = None) -> StaffForm:
    form = StaffForm(obj=obj, data={"roles": [r.value for r in obj.roles],
                                    "departments": [d.id for d in obj.departments]} if obj else None)
    if institution is not None:
        form.roles.choices = [(r.value, r.label) for r in Role.institution_roles()]
        form.departments.choices = department_choices(institution, blank=False)
        del form.region_id
    else:
        form.roles.choices = [(r.value, r.label) for r in (Role.REGIONAL_ADMIN, Role.PLATFORM_ADMIN)]
        form.region_id.choices = region_choices(True)
        del form.departments
    if obj is not None:
        form.username.render_kw = {"readonly": True}
    return form


def _chosen_departments(form: StaffForm, institution: Institution) -> list[Department]:
    return [get_owned_or_404(Department, dep_id, institution) for dep_id in (form.departments.data or [])]


def _show_initial_password(user: StaffUser, password: str) -> str:
    """Flash a one-time initial password; it is never stored in clear or logged."""
    flash(gettext("账号 %(name)s 的初始密码：%(pw)s（仅显示一次，请当面或安全渠道告知本人，首次登录须修改）",
                  name=user.username, pw=password), "secret")
    return url_for("org.staff", institution_id=user.institution_id) if user.institution_id \
        else url_for("org.platform_staff")


@bp.route("/i/<int:institution_id>/staff/new", methods=["GET", "POST"])
def staff_new(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    form = _staff_form(institution)

    def action():
        return services.create_staff(username=form.username.data, display_name=form.display_name.data.strip(),
                                     roles=form.roles.data, institution=institution,
                                     departments=_chosen_departments(form, institution), actor=actor())

    return handle_form(form, action, success=gettext("人员已创建。"), next_url=lambda r: _show_initial_password(*r),
                       template="organisation/form.html", title=gettext("新建人员"), institution=institution)


@bp.route("/i/<int:institution_id>/staff/<int:staff_id>/edit", methods=["GET", "POST"])
def staff_edit(institution_id: int, staff_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    user = get_owned_or_404(StaffUser, staff_id, institution)
    form = _staff_form(institution, user)
    form.username.data = user.username

    def action():
        return services.update_staff(user, display_name=form.display_name.data.strip(), roles=form.roles.data,
                                     departments=_chosen_departments(form, institution), actor=actor())

    return handle_form(form, action, success=gettext("人员信息已保存。"),
                       next_url=lambda u: url_for("org.staff", institution_id=institution.id),
                       template="organisation/staff_form.html", title=gettext("编辑人员：%(name)s", name=user.username),
                       institution=institution, user=user, confirm=ConfirmForm())


@bp.post("/i/<int:institution_id>/staff/<int:staff_id>/toggle")
def staff_toggle(institution_id: int, staff_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    user = get_owned_or_404(StaffUser, staff_id, institution)
    if user.id == actor().id:
        flash(gettext("不能停用自己的账号。"), "error")
        return redirect(url_for("org.staff", institution_id=institution.id))
    return toggle_active(user, url_for("org.staff", institution_id=institution.id))


@bp.post("/i/<int:institution_id>/staff/<int:staff_id>/reset-password")
def staff_reset_password(institution_id: int, staff_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    user = get_owned_or_404(StaffUser, staff_id, institution)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    password = services.reset_password(user, actor=actor())
    db.session.commit()
    return redirect(_show_initial_password(user, password))


@bp.post("/i/<int:institution_id>/staff/<int:staff_id>/unlock")
def staff_unlock(institution_id: int, staff_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    user = get_owned_or_404(StaffUser, staff_id, institution)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.unlock_staff(user, actor=actor())
    db.session.commit()
    flash(gettext("账号已解锁。"), "success")
    return redirect(url_for("org.staff", institution_id=institution.id))


# Regional and platform admins (platform admin only) ---------------------

@bp.get("/admin/staff")
@require(Permission.MANAGE_REGIONS)
def platform_staff():
    rows = db.session.scalars(select(StaffUser).where(StaffUser.institution_id.is_(None))
                              .order_by(StaffUser.username)).all()
    return render_template("organisation/platform_staff.html", users=rows, toggle=ConfirmForm())


@bp.route("/admin/staff/new", methods=["GET", "POST"])
@require(Permission.MANAGE_REGIONS)
def platform_staff_new():
    form = _staff_form(None)

    def action():
        region = db.session.get(Region, form.region_id.data) if form.region_id.data else None
        return services.create_staff(username=form.username.data, display_name=form.display_name.data.strip(),
                                     roles=form.roles.data, region=region, actor=actor())

    return handle_form(form, action, success=gettext("人员已创建。"), next_url=lambda r: _show_initial_password(*r),
                       template="organisation/form.html", title=gettext("新建区域或平台管理员"))


@bp.route("/admin/staff/<int:staff_id>/edit", methods=["GET", "POST"])
@require(Permission.MANAGE_REGIONS)
def platform_staff_edit(staff_id: int):
    user = db.session.get(StaffUser, staff_id)
    if user is None or user.institution_id is not None:
        abort(404)
    form = _staff_form(None, user)
    form.username.data = user.username

    def action():
        region = db.session.get(Region, form.region_id.data) if form.region_id.data else None
        return services.update_staff(user, display_name=form.display_name.data.strip(), roles=form.roles.data,
                                     departments=[], region=region, actor=actor())

    return handle_form(form, action, success=gettext("人员信息已保存。"),
                       next_url=lambda u: url_for("org.platform_staff"),
                       template="organisation/form.html", title=gettext("编辑人员：%(name)s", name=user.username))


@bp.post("/admin/staff/<int:staff_id>/toggle")
@require(Permission.MANAGE_REGIONS)
def platform_staff_toggle(staff_id: int):
    user = db.session.get(StaffUser, staff_id)
    if user is None or user.institution_id is not None:
        abort(404)
    if user.id == actor().id:
        flash(gettext("不能停用自己的账号。"), "error")
        return redirect(url_for("org.platform_staff"))
    return toggle_active(user, url_for("org.platform_staff"))


# Bulk import -----------------------------------------------------------

@bp.route("/i/<int:institution_id>/import", methods=["GET", "POST"])
def import_rows(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    form = ImportForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        try:
            report = importer.import_file(institution, form.kind.data, upload.filename, upload.stream,
                                          dry_run=form.dry_run.data, actor=actor())
        except importer.ImportFileError as exc:
            form.file.errors.append(str(exc))
        else:
            if report.ok and not form.dry_run.data:
                db.session.commit()
                flash(gettext("导入成功：新增 %(created)d 行，更新 %(updated)d 行。", created=report.created,
                              updated=report.updated), "success")
            else:
                db.session.rollback()
    status = 400 if (request.method == "POST" and (form.errors or (report and not report.ok))) else 200
    return render_template("organisation/import.html", institution=institution, form=form, report=report,
                           columns=importer.COLUMNS), status


@bp.get("/i/<int:institution_id>/import/template/<kind>.csv")
def import_template(institution_id: int, kind: str):
    get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    if kind not in importer.COLUMNS:
        abort(404)
    return Response(importer.template_csv(kind), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={kind}-template.csv"})


# Audit -----------------------------------------------------------------

def audit_scope(stmt, institution: Institution | None):
    """Restrict an audit query to one institution, or to every institution the user sees."""
    if institution is not None:
        return stmt.where(AuditEntry.institution_id == institution.id)
    ids = visible_institution_ids(actor())
    return stmt if ids is None else stmt.where(AuditEntry.institution_id.in_(ids))


def audit_query(form: AuditFilterForm, institution: Institution | None):
    stmt = audit_scope(select(AuditEntry), institution).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if form.validate():
        if form.actor.data:
            stmt = stmt.where(AuditEntry.actor_label.ilike(f"%{form.actor.data.strip()}%"))
        if form.action.data:
            stmt = stmt.where(AuditEntry.action.startswith(form.action.data.strip()))
        if form.target_type.data:
            stmt = stmt.where(AuditEntry.target_type == form.target_type.data.strip())
        if form.target_id.data:
            stmt = stmt.where(AuditEntry.target_id == form.target_id.data.strip())
        if form.date_from.data:
            stmt = stmt.where(AuditEntry.created_at >= local_day_bounds(date.fromisoformat(form.date_from.data))[0])
        if form.date_to.data:
            end = date.fromisoformat(form.date_to.data) + timedelta(days=1)
            stmt = stmt.where(AuditEntry.created_at < local_day_bounds(end)[0])
    return stmt


def _render_audit(institution: Institution | None):
    form = AuditFilterForm(request.args)
    stmt = audit_query(form, institution)
    page = paginate(stmt)
    # Suggest only actions the user could see entries for: other hospitals' activity stays invisible.
    actions = db.session.scalars(audit_scope(select(AuditEntry.action).distinct(), institution)
                                 .order_by(AuditEntry.action)).all()
    status = 400 if form.errors else 200
    return render_template("organisation/audit.html", form=form, page=page, institution=institution,
                           actions=actions), status


@bp.get("/i/<int:institution_id>/audit")
def audit(institution_id: int):
    return _render_audit(get_institution_or_404(institution_id, Permission.VIEW_AUDIT))


@bp.get("/admin/audit")
def audit_all():
    user = actor()
    if not user.has_role(Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN):
        abort(403)
    return _render_audit(None)
