"""Tenant scoping: the one place that decides which institutions a staff member sees.

Every institution-owned row is reached through these helpers. Rows a user may
not see are reported as missing (404), never as forbidden, so that ids of other
hospitals cannot be probed.
"""
from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, Protocol, TypeVar

from flask import abort
from flask_login import current_user
from sqlalchemy import Select, select
from sqlalchemy.orm import Mapped

from core.extensions import db
from organisation.models import Institution, Region, Role, StaffUser


class InstitutionOwned(Protocol):
    """A row owned by one institution (core.db.InstitutionScoped and the models that declare the column)."""

    id: Mapped[int]
    institution_id: Mapped[int]


M = TypeVar("M", bound=InstitutionOwned)


class Permission(StrEnum):
    VIEW_ORG = "view_org"              # departments, touchpoints, staff list
    MANAGE_ORG = "manage_org"          # create/edit/deactivate/import them
    MANAGE_INSTITUTIONS = "manage_institutions"  # institution records in a region
    MANAGE_REGIONS = "manage_regions"
    VIEW_AUDIT = "view_audit"
    VIEW_SURVEYS = "view_surveys"      # responses, touchpoint results, alerts (handlers: own departments)
    MANAGE_SURVEYS = "manage_surveys"  # templates, QR codes, posters, settings, staff survey tokens
    FOLLOW_UP = "follow_up"            # discharge lists, call outcomes, phone answers
    HANDLE_ALERTS = "handle_alerts"    # acknowledge and close service-recovery alerts, see the contact phone
    HANDLE_COMPLAINTS = "handle_complaints"  # see and work cases (handlers: their departments' cases)
    MANAGE_COMPLAINTS = "manage_complaints"  # register, triage, route, approve replies, close, settings
    VIEW_COMPLAINT_STATS = "view_complaint_stats"  # ledger and statistics


# Which roles grant each permission over an institution they can see.
GRANTS: dict[Permission, set[Role]] = {
    Permission.VIEW_ORG: {Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN,
                          Role.COMPLAINT_OFFICER, Role.LEADERSHIP},
    Permission.MANAGE_ORG: {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN},
    Permission.MANAGE_INSTITUTIONS: {Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN},
    Permission.MANAGE_REGIONS: {Role.PLATFORM_ADMIN},
    Permission.VIEW_AUDIT: {Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN},
    Permission.VIEW_SURVEYS: {Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN,
                              Role.COMPLAINT_OFFICER, Role.DEPARTMENT_HANDLER, Role.LEADERSHIP},
    Permission.MANAGE_SURVEYS: {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN},
    Permission.FOLLOW_UP: {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN, Role.FOLLOWUP_NURSE},
    # Leadership and regional admins watch alerts; they do not work them nor need the patient's number.
    Permission.HANDLE_ALERTS: {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN, Role.COMPLAINT_OFFICER,
                               Role.DEPARTMENT_HANDLER},
    Permission.HANDLE_COMPLAINTS: {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN, Role.COMPLAINT_OFFICER,
                                   Role.DEPARTMENT_HANDLER},
    Permission.MANAGE_COMPLAINTS: {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN, Role.COMPLAINT_OFFICER},
    Permission.VIEW_COMPLAINT_STATS: {Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN,
                                      Role.COMPLAINT_OFFICER, Role.LEADERSHIP},
}


def department_scope(user: StaffUser, institution: Institution) -> set[int] | None:
    """Departments whose rows the user may see in ``institution``; None means all.

    Department handlers see only the departments they are bound to; every other
    role that can see the institution sees all of it.
    """
    if user.has_role(Role.PLATFORM_ADMIN, Role.REGIONAL_ADMIN, Role.INSTITUTION_ADMIN, Role.COMPLAINT_OFFICER,
                     Role.LEADERSHIP, Role.FOLLOWUP_NURSE):
        return None
    return user.department_ids


def region_subtree_ids(region: Region) -> Select:
    return select(Region.id).where(Region.path.startswith(region.path))


def visible_institution_ids(user: StaffUser) -> Select | None:
    """A subquery of the institution ids the user may see; None means all."""
    if user.has_role(Role.PLATFORM_ADMIN):
        return None
    if user.has_role(Role.REGIONAL_ADMIN) and user.region is not None:
        return select(Institution.id).where(Institution.region_id.in_(region_subtree_ids(user.region)))
    return select(Institution.id).where(Institution.id == (user.institution_id or -1))


def scoped(stmt: Select, column: Any, user: StaffUser | None = None) -> Select:
    """Restrict ``stmt`` to rows whose ``column`` (an institution id) the user may see."""
    user = user or current_user
    ids = visible_institution_ids(user)
    return stmt if ids is None else stmt.where(column.in_(ids))


def can_see_institution(user: StaffUser, institution: Institution) -> bool:
    if user.has_role(Role.PLATFORM_ADMIN):
        return True
    if user.has_role(Role.REGIONAL_ADMIN) and user.region is not None:
        return institution.region is not None and institution.region.path.startswith(user.region.path)
    return user.institution_id == institution.id


def can(user: StaffUser, permission: Permission, institution: Institution | None = None) -> bool:
    """Whether ``user`` holds ``permission`` (over ``institution`` when given)."""
    if not getattr(user, "is_authenticated", False):
        return False
    if not user.roles.intersection(GRANTS[permission]):
        return False
    return institution is None or can_see_institution(user, institution)


def get_institution_or_404(institution_id: int, permission: Permission) -> Institution:
    """Load an institution the current user can see and act on with ``permission``."""
    institution = db.session.get(Institution, institution_id)
    if institution is None or not can_see_institution(current_user, institution):
        abort(404)
    if not can(current_user, permission, institution):
        abort(403)
    return institution


def get_owned_or_404(model: type[M], row_id: int, institution: Institution) -> M:
    """Load one row of ``model`` that belongs to ``institution``."""
    row = db.session.scalar(select(model).where(model.id == row_id, model.institution_id == institution.id))
    if row is None:
        abort(404)
    return row


def require(permission: Permission) -> Callable:
    """Guard a view that is not tied to one institution (e.g. region admin)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not can(current_user, permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
