"""Organisation admin: the blueprint and its shared helpers, home, regions and institutions.

The other organisation pages add their routes to this blueprint: views_units (departments,
touchpoints), views_staff (staff accounts), views_audit (bulk import, the audit trail).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from core.extensions import db
from core.notify import kind_label
from core.views import handle_form, paginate
from organisation import notifications, services
from organisation.forms import (
    ComplaintContactForm,
    ConfirmForm,
    InstitutionForm,
    RegionForm,
)
from organisation.models import Department, Institution, Region, Role, StaffUser, Touchpoint
from organisation.scope import (
    Permission,
    can,
    get_institution_or_404,
    require,
    scoped,
)
from organisation.todo import todo_for

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
    return ([("", gettext("（无）"))] if include_blank else []) + choices


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


@bp.route("/i/<int:institution_id>/settings", methods=["GET", "POST"])
def institution_settings(institution_id: int):
    """The institution's own settings, for its admin: the complaint phone and address patients are shown."""
    institution = get_institution_or_404(institution_id, Permission.MANAGE_ORG)
    form = ComplaintContactForm(obj=institution)
    return handle_form(
        form, lambda: services.update_complaint_contact(institution, phone=form.complaint_phone.data or "",
                                                        address=form.complaint_address.data or "", actor=actor()),
        success=gettext("机构设置已保存。"),
        next_url=lambda inst: url_for("org.institution_settings", institution_id=inst.id),
        template="organisation/form.html", title=gettext("机构设置"), institution=institution)


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
    user = actor()
    # The staff member's home: what waits on them here, and their latest notices (only at their own hospital).
    own = user.institution_id == institution.id
    return render_template("organisation/overview.html", institution=institution, counts=counts,
                           todo=todo_for(user, institution),
                           latest=notifications.latest_notifications(user) if own else None, kind_label=kind_label)


def _is_own_institution(institution_id: int) -> bool:
    """Every staff member may open their own institution's landing page."""
    return actor().institution_id == institution_id


def _count(model, institution: Institution) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.institution_id == institution.id))
