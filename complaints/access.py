"""Who may see and who may act on one complaint: the one home of these rules.

* **Officers** — the complaint officers and institution admins of the case's hospital, and
  platform admins: they triage, route, approve, close (the MANAGE_COMPLAINTS permission).
* **Handlers** — department handlers see and work the cases their departments lead or
  co-handle (一口受理: the routing decides who sees a case); only the lead drafts.
* **Leadership** of the hospital reads its case pages and acts on none.

Everyone else gets a 404 for a case (an invisible row is missing, not forbidden), or a 403
when they may see the hospital but hold no complaint permission at all.
"""
from __future__ import annotations

from flask import abort, make_response
from flask_babel import gettext
from flask_login import current_user

from complaints.models import Complaint
from core.errors import render_error
from core.extensions import db
from organisation.models import Institution, Role, StaffUser
from organisation.scope import GRANTS, Permission, can, can_see_institution, get_owned_or_404

# Roles that hold MANAGE_COMPLAINTS within their own hospital (a platform admin holds it everywhere).
OFFICERS = frozenset(GRANTS[Permission.MANAGE_COMPLAINTS] - {Role.PLATFORM_ADMIN})
HANDLERS = frozenset({Role.DEPARTMENT_HANDLER})


def is_officer(user: StaffUser, complaint: Complaint) -> bool:
    """A complaint officer or institution admin of the case's hospital, or a platform admin."""
    if user.has_role(Role.PLATFORM_ADMIN):
        return True
    return user.institution_id == complaint.institution_id and bool(user.roles & OFFICERS)


def case_department_ids(complaint: Complaint) -> set[int]:
    """The lead and active co-handling departments of a case."""
    ids = {cd.department_id for cd in complaint.departments if cd.active}
    if complaint.lead_department_id is not None:
        ids.add(complaint.lead_department_id)
    return ids


def handles(user: StaffUser, complaint: Complaint) -> bool:
    """A department handler bound to the lead or an active co-handling department of the case."""
    return (user.has_role(Role.DEPARTMENT_HANDLER) and complaint.institution_id == user.institution_id
            and bool(user.department_ids & case_department_ids(complaint)))


def leads(user: StaffUser, complaint: Complaint) -> bool:
    """A department handler bound to the case's lead department."""
    return (user.has_role(Role.DEPARTMENT_HANDLER) and complaint.institution_id == user.institution_id
            and complaint.lead_department_id in user.department_ids)


def handles_department(user: StaffUser, complaint: Complaint, department_id: int) -> bool:
    """A department handler of the case's hospital bound to ``department_id``."""
    return (user.has_role(Role.DEPARTMENT_HANDLER) and complaint.institution_id == user.institution_id
            and department_id in user.department_ids)


def may_work_case(user: StaffUser, complaint: Complaint) -> bool:
    """Officers work every case of their hospital; handlers the cases their departments lead or co-handle."""
    return is_officer(user, complaint) or handles(user, complaint)


def may_draft(user: StaffUser, complaint: Complaint) -> bool:
    """Officers, and handlers of the lead department, write replies and put rectifications on the books."""
    return is_officer(user, complaint) or leads(user, complaint)


def reads_cases_of(user: StaffUser, institution: Institution) -> bool:
    """The hospital's own leadership: case pages to read, nothing to do on them."""
    return user.has_role(Role.LEADERSHIP) and user.institution_id == institution.id


def merged_into(complaint: Complaint) -> Complaint | None:
    """The case a duplicate was merged into (complaints.corrections), if it was."""
    if complaint.merged_into_id is None:
        return None
    primary = db.session.get(Complaint, complaint.merged_into_id)
    return primary if primary is not None and primary.institution_id == complaint.institution_id else None


def may_read_case_files(user: StaffUser, complaint: Complaint) -> bool:
    """Whoever works the case, or the case a duplicate was merged into: its evidence belongs to that case now."""
    if may_work_case(user, complaint):
        return True
    primary = merged_into(complaint)
    return primary is not None and may_work_case(user, primary)


def may_see_case(user: StaffUser, complaint: Complaint) -> bool:
    """Whoever works the case (or the case it was merged into), and the hospital's leadership (read only)."""
    if may_read_case_files(user, complaint):
        return True
    institution = db.session.get(Institution, complaint.institution_id)
    return institution is not None and reads_cases_of(user, institution)


# For views: load what the current user may see, or answer 404 / 403 -----------------------

def case_institution_or_404(institution_id: int, *, work: bool = False) -> Institution:
    """The hospital, for staff who work its cases (HANDLE_COMPLAINTS) or, unless ``work``, its leadership."""
    institution = db.session.get(Institution, institution_id)
    user = current_user
    if institution is None or not can_see_institution(user, institution):
        abort(404)
    if can(user, Permission.HANDLE_COMPLAINTS, institution) or (not work and reads_cases_of(user, institution)):
        return institution
    abort(403)


def load_case_or_404(institution_id: int, case_id: int, *, work: bool = False) -> tuple[Institution, Complaint]:
    """A case the current user may see (``work``: may act on); a handler's other cases are 404."""
    institution = case_institution_or_404(institution_id, work=work)
    complaint = get_owned_or_404(Complaint, case_id, institution)
    allowed = may_work_case if work else may_see_case
    if not allowed(current_user, complaint):
        abort(404)
    return institution, complaint


def require_officer(complaint: Complaint, message: str | None = None) -> None:
    """A step only officers take: anyone else is refused (403, with ``message``) before the step's form is
    read, so that its validation tells them nothing about the case."""
    if not is_officer(current_user, complaint):
        abort(make_response(render_error(403, message or gettext("只有投诉管理人员可以执行此操作。"))))
