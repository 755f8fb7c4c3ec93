"""Complaint blueprints: staff pages under the institution, public pages for complainants."""
from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, url_for
from flask_login import login_required

if TYPE_CHECKING:
    from complaints.models import Complaint

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


def case_url(complaint: Complaint, anchor: str | None = None) -> str:
    """The staff page of a case, optionally at one of its sections."""
    return case_url_by_id(complaint.institution_id, complaint.id, anchor)


def case_url_by_id(institution_id: int, case_id: int, anchor: str | None = None) -> str:
    return url_for("complaints_staff.case", institution_id=institution_id, case_id=case_id, _anchor=anchor)
