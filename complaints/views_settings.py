"""The institution's complaint settings: targets (办理时限, reminders, 督办, case numbers) and categories."""
from __future__ import annotations

from flask import Flask, abort, flash, redirect, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from complaints import categories as category_service
from complaints.blueprints import staff_bp
from complaints.forms_intake import CategoryForm
from complaints.models import Category
from complaints.settings import FIELDS, ComplaintSettingsForm, complaint_settings, update_complaint_settings
from complaints.views_intake import ensure_default_categories
from core.extensions import db
from core.views import handle_form
from organisation.forms import ConfirmForm
from organisation.models import Institution
from organisation.nav import register_nav
from organisation.scope import Permission, can, get_institution_or_404


@staff_bp.route("/settings", methods=["GET", "POST"])
def settings(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    form = ComplaintSettingsForm(obj=complaint_settings(institution.id))

    def action():
        return update_complaint_settings(institution.id, {name: getattr(form, name).data for name in FIELDS},
                                         actor=current_user._get_current_object())

    return handle_form(form, action, success=gettext("投诉设置已保存。新的时限用于此后登记的案件。"),
                       next_url=lambda s: url_for("complaints_staff.settings", institution_id=institution.id),
                       template="organisation/form.html", title=gettext("投诉设置"), institution=institution)


# Categories -------------------------------------------------------------------------------

@staff_bp.route("/categories", methods=["GET", "POST"])
def categories(institution_id: int):
    """The category list: the national defaults and the institution's own; add one."""
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    ensure_default_categories()
    form = CategoryForm()

    def add():
        return category_service.create_category(institution, name=form.name.data, safety=form.safety.data,
                                                charges=form.charges.data, sort=form.sort.data,
                                                actor=current_user._get_current_object())

    rows = category_service.categories_for(institution, include_inactive=True)
    return handle_form(form, add, success=gettext("类别已添加。"),
                       next_url=lambda _c: url_for("complaints_staff.categories", institution_id=institution.id),
                       template="complaints/intake/categories.html", institution=institution,
                       defaults=[c for c in rows if c.institution_id is None],
                       own=[c for c in rows if c.institution_id == institution.id],
                       label=category_service.category_label, toggle=ConfirmForm())


def _own_category_or_404(institution: Institution, category_id: int) -> Category:
    category = db.session.get(Category, category_id)
    if category is None or category.institution_id != institution.id:
        abort(404)
    return category


@staff_bp.route("/categories/<int:category_id>/edit", methods=["GET", "POST"])
def category_edit(institution_id: int, category_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    category = _own_category_or_404(institution, category_id)
    form = CategoryForm(obj=category)

    def save():
        return category_service.update_category(category, name=form.name.data, safety=form.safety.data,
                                                charges=form.charges.data, sort=form.sort.data,
                                                actor=current_user._get_current_object())

    return handle_form(form, save, success=gettext("类别已保存。"),
                       next_url=lambda _c: url_for("complaints_staff.categories", institution_id=institution.id),
                       template="complaints/intake/category_form.html", institution=institution, category=category)


@staff_bp.post("/categories/<int:category_id>/toggle")
def category_toggle(institution_id: int, category_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    category = _own_category_or_404(institution, category_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    category_service.set_category_active(category, not category.active, actor=current_user._get_current_object())
    db.session.commit()
    flash(gettext("类别已启用。") if category.active else gettext("类别已停用。"), "success")
    return redirect(url_for("complaints_staff.categories", institution_id=institution.id))


def init_app(app: Flask) -> None:
    def manages(user, institution):
        return can(user, Permission.MANAGE_COMPLAINTS, institution)

    register_nav(app, _l("投诉类别"), "complaints_staff.categories", manages, order=58)
    register_nav(app, _l("投诉设置"), "complaints_staff.settings", manages, order=59)
