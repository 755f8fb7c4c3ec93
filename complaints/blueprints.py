"""Complaint blueprints: staff pages under the institution, public pages for complainants."""
from flask import Blueprint
from flask_login import login_required

staff_bp = Blueprint("complaints_staff", __name__, url_prefix="/i/<int:institution_id>/complaints")
# Public pages (intake, progress lookup, satisfaction feedback): no login, like the patient survey pages.
public_bp = Blueprint("complaints", __name__, url_prefix="/c")
# Platform-wide pages (the working-day calendar).
admin_bp = Blueprint("complaints_admin", __name__, url_prefix="/admin/complaints")


@staff_bp.before_request
@login_required
def _staff_only():
    return None


@admin_bp.before_request
@login_required
def _admin_only():
    return None
