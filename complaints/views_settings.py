"""The institution's complaint targets (办理时限, reminders, 督办, case numbers)."""
from __future__ import annotations

from flask import Flask, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from complaints.blueprints import staff_bp
from complaints.settings import FIELDS, ComplaintSettingsForm, complaint_settings, update_complaint_settings
from core.services import ServiceError
from core.views import handle_form
from organisation.nav import register_nav
from organisation.scope import Permission, can, get_institution_or_404


@staff_bp.route("/settings", methods=["GET", "POST"])
def settings(institution_id: int):
    institution = get_institution_or_404(institution_id, Permission.MANAGE_COMPLAINTS)
    form = ComplaintSettingsForm(obj=complaint_settings(institution.id))

    def action():
        try:
            return update_complaint_settings(institution.id, {name: getattr(form, name).data for name in FIELDS},
                                             actor=current_user._get_current_object())
        except ValueError as exc:
            raise ServiceError(str(exc), "complex_days") from None

    return handle_form(form, action, success=gettext("投诉设置已保存。新的时限用于此后受理的案件。"),
                       next_url=lambda s: url_for("complaints_staff.settings", institution_id=institution.id),
                       template="organisation/form.html", title=gettext("投诉设置"), institution=institution)


def init_app(app: Flask) -> None:
    register_nav(app, _l("投诉设置"), "complaints_staff.settings",
                 lambda user, institution: can(user, Permission.MANAGE_COMPLAINTS, institution), order=59)
