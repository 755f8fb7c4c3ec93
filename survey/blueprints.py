"""The staff-side survey blueprint; each views module adds its routes to it."""
from flask import Blueprint
from flask_login import login_required

staff_bp = Blueprint("survey_staff", __name__, url_prefix="/i/<int:institution_id>/survey")


@staff_bp.before_request
@login_required
def _staff_only():
    return None
