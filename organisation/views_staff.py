"""Organisation admin: staff accounts of an institution, and regional and platform admins."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select

from core.extensions import db
from core.views import handle_form, paginate
from organisation import services, throttle, totp
from organisation.forms import (
    ConfirmForm,
    StaffForm,
)
from organisation.models import Department, Institution, Region, Role, StaffUser
from organisation.scope import (
    Permission,
    can,
    get_institution_or_404,
    get_owned_or_404,
    require,
)
from organisation.views import actor, bp, region_choices, search_filter, toggle_active
from organisation.views_units import department_choices

# Staff -----------------------------------------------------------------

@bp.get("/i/<int:institution_id>/staff")
def staff(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.VIEW_ORG)
    q = request.args.get("q", "").strip()
    stmt = select(StaffUser).where(StaffUser.institution_id == institution.id).order_by(StaffUser.username)
    page = paginate(search_filter(stmt, q, StaffUser.username, StaffUser.display_name))
    return render_template("organisation/staff.html", institution=institution, page=page, q=q,
                           toggle=ConfirmForm(), can_manage=can(actor(), Permission.MANAGE_ORG, institution))


def _staff_form(institution: Institution | None, obj: StaffUser | None = None) -> StaffForm:
    form = StaffForm(obj=obj, data={"roles": [r.value for r in obj.roles],
                                    "departments": [d.id for d in obj.departments]} if obj else None)
    if institution is not None:
        form.roles.choices = [(r.value, r.label) for r in Role.institution_roles()]
        form.departments.choices = department_choices(institution)
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


def _staff_list_url(user: StaffUser) -> str:
    return url_for("org.staff", institution_id=user.institution_id) if user.institution_id \
        else url_for("org.platform_staff")


def _show_initial_password(user: StaffUser, password: str, *, heading: str):
    """The one-time initial password, on this response only: never flashed (Flask's flash travels in the
    signed but readable session cookie), never stored in clear, never logged."""
    return render_template("organisation/initial_password.html", user=user, password=password, heading=heading,
                           back=_staff_list_url(user))


@bp.route("/i/<int:institution_id>/staff/new", methods=["GET", "POST"])
def staff_new(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    form = _staff_form(institution)

    def action():
        return services.create_staff(username=form.username.data, display_name=form.display_name.data.strip(),
                                     roles=form.roles.data, institution=institution,
                                     departments=_chosen_departments(form, institution), actor=actor())

    return handle_form(form, action, success=gettext("人员已创建。"), next_url=lambda r: _staff_list_url(r[0]),
                       page=lambda r: _show_initial_password(*r, heading=gettext("人员已创建")),
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
                       institution=institution, user=user, confirm=ConfirmForm(),
                       login_wait=throttle.username_wait(user.username))


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
    return _show_initial_password(user, password, heading=gettext("密码已重置"))


@bp.post("/i/<int:institution_id>/staff/<int:staff_id>/reset-two-factor")
def staff_reset_two_factor(institution_id: int, staff_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    user = get_owned_or_404(StaffUser, staff_id, institution)
    return _reset_two_factor(user, url_for("org.staff_edit", institution_id=institution.id, staff_id=user.id))


def _reset_two_factor(user: StaffUser, next_url: str):
    """Remove a user's second factor (a lost phone); they sign in with the password alone and may enrol again."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    totp.reset(user, actor=actor())
    db.session.commit()
    flash(gettext("已重置 %(name)s 的两步验证，其所有登录会话已结束。", name=user.username), "success")
    return redirect(next_url)


@bp.post("/i/<int:institution_id>/staff/<int:staff_id>/unlock")
def staff_unlock(institution_id: int, staff_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    user = get_owned_or_404(StaffUser, staff_id, institution)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.lift_login_delay(user, actor=actor())
    db.session.commit()
    flash(gettext("已解除登录限制，该账号可以立即重新登录。"), "success")
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

    return handle_form(form, action, success=gettext("人员已创建。"), next_url=lambda r: _staff_list_url(r[0]),
                       page=lambda r: _show_initial_password(*r, heading=gettext("人员已创建")),
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


@bp.post("/admin/staff/<int:staff_id>/reset-two-factor")
@require(Permission.MANAGE_REGIONS)
def platform_staff_reset_two_factor(staff_id: int):
    user = db.session.get(StaffUser, staff_id)
    if user is None or user.institution_id is not None:
        abort(404)
    return _reset_two_factor(user, url_for("org.platform_staff"))
