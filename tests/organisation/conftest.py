"""Fixtures shared by the organisation tests: the demo tenants and small helpers.

Institution A is the demo general hospital (rmyy), institution B the demo TCM
hospital (zyy); both sit in the same demo district, so regional scoping is
exercised with neighbours, not strangers.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from core.audit import AuditEntry
from core.extensions import db
from organisation.models import Department, Institution, Role, StaffUser, Touchpoint
from tests.factories import demo_institution, demo_user, login, make_region, make_staff

ROLE_USERNAMES = {
    Role.INSTITUTION_ADMIN: "admin",
    Role.COMPLAINT_OFFICER: "officer",
    Role.DEPARTMENT_HANDLER: "handler",
    Role.FOLLOWUP_NURSE: "nurse",
    Role.LEADERSHIP: "leader",
}


class Tenant:
    """One institution with a department, a touchpoint and a spare staff member to act on."""

    def __init__(self, institution: Institution, department: Department, touchpoint: Touchpoint,
                 staff: StaffUser | None = None, key: str = ""):
        self.institution, self.department, self.touchpoint = institution, department, touchpoint
        self._staff, self._key = staff, key

    def __repr__(self) -> str:
        return f"Tenant({self.institution.registration_code})"

    @property
    def id(self) -> int:
        return self.institution.id

    @property
    def staff(self) -> StaffUser:
        """Not one of the role accounts the tests log in as; made on first use (password hashing is slow)."""
        if self._staff is None:
            self._staff = make_staff([Role.FOLLOWUP_NURSE], self.institution,
                                     display_name=f"{self._key}-目标人员")
        return self._staff

    def role_user(self, role: Role) -> StaffUser:
        return demo_user(f"{self._key}-{ROLE_USERNAMES[role]}")


def _tenant(key: str, department_code: str, touchpoint_code: str) -> Tenant:
    institution = demo_institution(key)
    department = db.session.scalar(select(Department).where(
        Department.institution_id == institution.id, Department.code == department_code))
    touchpoint = db.session.scalar(select(Touchpoint).where(
        Touchpoint.institution_id == institution.id, Touchpoint.code == touchpoint_code))
    assert department is not None and touchpoint is not None
    return Tenant(institution, department, touchpoint, key=key)


@pytest.fixture
def tenant_a(ctx) -> Tenant:
    return _tenant("rmyy", "XNK", "W-GH-01")


@pytest.fixture
def tenant_b(ctx) -> Tenant:
    return _tenant("zyy", "ZYNK", "W-ZYF-01")


@pytest.fixture
def platform_admin(ctx) -> StaffUser:
    return demo_user("platform")


@pytest.fixture
def city_admin(ctx) -> StaffUser:
    """The demo regional admin: the city that contains all three demo institutions."""
    return demo_user("region")


@pytest.fixture
def admin_client(client, tenant_a):
    login(client, tenant_a.role_user(Role.INSTITUTION_ADMIN))
    return client


@pytest.fixture
def other_province_admin(ctx) -> StaffUser:
    return make_staff([Role.REGIONAL_ADMIN], region=make_region())


def body(response) -> str:
    return response.get_data(as_text=True)


def table_body(response) -> str:
    """The rows of the page's data tables, without the echoed search box or filters."""
    return "".join(re.findall(r"<tbody>(.*?)</tbody>", body(response), re.S))


def audit_entries(**filters) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id)
    for key, value in filters.items():
        stmt = stmt.where(getattr(AuditEntry, key) == value)
    return list(db.session.scalars(stmt))


def fresh(obj):
    """Re-read a row after a request: the request ran in its own session."""
    db.session.refresh(obj)
    return obj


def initial_password(response) -> str:
    """The generated password a create or reset page shows once (organisation/initial_password.html)."""
    [password] = re.findall(r'<code id="initial-password">([^<]+)</code>', body(response))
    return password
