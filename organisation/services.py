"""Business rules for regions, institutions, departments, touchpoints and staff.

Every function flushes and audits; the caller (a view, a job, the CLI) commits.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select

from core.audit import record
from core.db import utcnow
from core.extensions import db
from core.services import ServiceError, TooManyTries
from organisation import sessions, throttle
from organisation.models import (
    Department,
    Institution,
    Region,
    Role,
    StaffRole,
    StaffUser,
    Touchpoint,
    staff_department,
)
from organisation.passwords import generate_initial_password, hash_password, password_problems, verify_password


def _changes(obj: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Apply ``values`` to ``obj`` and return {field: [old, new]} of what changed."""
    changed = {}
    for key, new in values.items():
        old = getattr(obj, key)
        if old != new:
            changed[key] = [_plain(old), _plain(new)]
            setattr(obj, key, new)
    return changed


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# Regions ---------------------------------------------------------------

def create_region(*, code: str, name: str, level: str, parent: Region | None, actor: Any) -> Region:
    """Create a region under ``parent``; its path places it in the tree."""
    _check_unique_region_code(code, None)
    region = Region(code=code, name=name, level=level, parent_id=parent.id if parent else None)
    db.session.add(region)
    db.session.flush()
    region.path = f"{parent.path if parent else '/'}{region.id}/"
    record(actor, "region.create", region, {"code": code, "name": name, "level": level})
    return region


def update_region(region: Region, *, actor: Any, **values: Any) -> Region:
    """Edit a region's code, name or level (its place in the tree is fixed)."""
    if "code" in values:
        _check_unique_region_code(values["code"], region.id)
    changed = _changes(region, values)
    if changed:
        record(actor, "region.update", region, changed)
    return region


def _check_unique_region_code(code: str, own_id: int | None) -> None:
    other = db.session.scalar(select(Region).where(Region.code == code))
    if other is not None and other.id != own_id:
        raise ServiceError(gettext("区划代码 %(code)s 已被其他区域使用。", code=code), "code")


# Institutions ----------------------------------------------------------

def create_institution(*, actor: Any, **values: Any) -> Institution:
    """Register an institution; the registration code must be unique."""
    _check_unique_registration(values["registration_code"], None)
    institution = Institution(**values)
    db.session.add(institution)
    db.session.flush()
    record(actor, "institution.create", institution, {k: _plain(v) for k, v in values.items()})
    return institution


def update_institution(institution: Institution, *, actor: Any, **values: Any) -> Institution:
    """Edit an institution's record."""
    if "registration_code" in values:
        _check_unique_registration(values["registration_code"], institution.id)
    changed = _changes(institution, values)
    if changed:
        record(actor, "institution.update", institution, changed)
    return institution


def _check_unique_registration(code: str, own_id: int | None) -> None:
    other = db.session.scalar(select(Institution).where(Institution.registration_code == code))
    if other is not None and other.id != own_id:
        raise ServiceError(gettext("登记号 %(code)s 已被其他机构使用。", code=code), "registration_code")


# Digits and the ways a hotline is written: 028-1234 5678, (028)12345678 转 8001, +86 …, two numbers with 、 or /.
_HOTLINE = re.compile(r"^[0-9+()（）\-\s转、/,，]+$")


def update_complaint_contact(institution: Institution, *, phone: str, address: str, actor: Any) -> Institution:
    """Set the complaint phone and address patients are shown; the phone is kept as written, if it can be dialled."""
    phone = unicodedata.normalize("NFKC", phone or "").strip()
    phone = re.sub(r"\s+", " ", phone)
    address = " ".join((address or "").split())
    if phone and (not _HOTLINE.match(phone) or len(re.sub(r"\D", "", phone)) < 5):
        raise ServiceError(gettext("请填写可以拨打的电话号码，例如 028-12345678 或 028-12345678 转 8001。"),
                           "complaint_phone")
    changed = _changes(institution, {"complaint_phone": phone, "complaint_address": address})
    if changed:
        record(actor, "institution.update_complaint_contact", institution, changed)
    return institution


def set_active(obj: Any, active: bool, *, actor: Any) -> Any:
    """Deactivate or reactivate a row; history keeps pointing at it, nothing is deleted."""
    if obj.active != active:
        obj.active = active
        if isinstance(obj, StaffUser) and not active:
            sessions.end_user_sessions(obj, sessions.DEACTIVATED)
        record(actor, f"{obj.__tablename__}.{'activate' if active else 'deactivate'}", obj)
    return obj


# Departments and touchpoints -------------------------------------------

def _check_unique_code(model: type[Department] | type[Touchpoint], institution: Institution, code: str,
                       own_id: int | None) -> None:
    """Codes are unique within an institution regardless of case ("CWK" and "cwk" are one code; the database
    holds the same rule as a unique index on lower(code))."""
    other = db.session.execute(select(model.id, model.code).where(
        model.institution_id == institution.id, func.lower(model.code) == code.lower(), model.id != (own_id or -1))
    ).first()
    if other is None:
        return
    if other.code == code:
        raise ServiceError(gettext("编码 %(code)s 在本机构已被使用。", code=code), "code")
    raise ServiceError(gettext("编码 %(code)s 与本机构已有的编码 %(other)s 只有大小写不同，不能重复使用。",
                               code=code, other=other.code), "code")


def _check_parent(department: Department | None, parent: Department | None) -> None:
    node = parent
    while node is not None and department is not None:
        if node.id == department.id:
            raise ServiceError(gettext("上级科室不能是该科室本身或其下级。"), "parent_id")
        node = node.parent


def create_department(institution: Institution, *, code: str, name: str, kind: str,
                      parent: Department | None = None, actor: Any) -> Department:
    """Add a department to an institution; codes are unique within it."""
    _check_unique_code(Department, institution, code, None)
    department = Department(institution_id=institution.id, code=code, name=name, kind=kind,
                            parent_id=parent.id if parent else None)
    db.session.add(department)
    db.session.flush()
    record(actor, "department.create", department, {"code": code, "name": name, "kind": kind,
                                                     "parent_id": department.parent_id})
    return department


def update_department(department: Department, institution: Institution, *, actor: Any,
                      parent: Department | None = None, **values: Any) -> Department:
    """Edit a department; it may not become its own ancestor."""
    if "code" in values:
        _check_unique_code(Department, institution, values["code"], department.id)
    _check_parent(department, parent)
    values["parent_id"] = parent.id if parent else None
    changed = _changes(department, values)
    if changed:
        record(actor, "department.update", department, changed)
    return department


def create_touchpoint(institution: Institution, *, code: str, name: str, kind: str,
                      department: Department, location: str = "", actor: Any) -> Touchpoint:
    """Add a touchpoint (window, clinic, ward …) belonging to a department."""
    _check_unique_code(Touchpoint, institution, code, None)
    touchpoint = Touchpoint(institution_id=institution.id, code=code, name=name, kind=kind,
                            department_id=department.id, location=location)
    db.session.add(touchpoint)
    db.session.flush()
    record(actor, "touchpoint.create", touchpoint, {"code": code, "name": name, "kind": kind,
                                                    "department_id": department.id})
    return touchpoint


def update_touchpoint(touchpoint: Touchpoint, institution: Institution, *, actor: Any,
                      **values: Any) -> Touchpoint:
    """Edit a touchpoint."""
    if "code" in values:
        _check_unique_code(Touchpoint, institution, values["code"], touchpoint.id)
    changed = _changes(touchpoint, values)
    if changed:
        record(actor, "touchpoint.update", touchpoint, changed)
    return touchpoint


# Staff -----------------------------------------------------------------

def _check_roles(roles: Iterable[Role], institution: Institution | None, region: Region | None) -> set[Role]:
    roles = {Role(r) for r in roles}
    if not roles:
        raise ServiceError(gettext("请至少选择一个角色。"), "roles")
    inst_roles = set(Role.institution_roles())
    if institution is not None and not roles <= inst_roles:
        raise ServiceError(gettext("机构人员只能拥有本机构的角色。"), "roles")
    if institution is None and roles & inst_roles:
        raise ServiceError(gettext("机构角色必须属于某一机构。"), "roles")
    if Role.REGIONAL_ADMIN in roles and region is None:
        raise ServiceError(gettext("区域管理员必须指定所辖区域。"), "region_id")
    return roles


def _check_handler_departments(roles: set[Role], departments: list[Department]) -> None:
    if Role.DEPARTMENT_HANDLER in roles and not departments:
        raise ServiceError(gettext("科室处理人至少需要绑定一个科室。"), "departments")


def create_staff(*, username: str, display_name: str, roles: Iterable[Role],
                 institution: Institution | None = None, region: Region | None = None,
                 departments: list[Department] | None = None, password: str | None = None,
                 actor: Any) -> tuple[StaffUser, str]:
    """Create a staff account with an initial password that must be changed at first login.

    Returns the user and the initial password (shown once, never stored in clear).
    """
    username = username.strip().lower()
    if db.session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise ServiceError(gettext("用户名 %(name)s 已存在。", name=username), "username")
    roles = _check_roles(roles, institution, region)
    departments = departments or []
    _check_handler_departments(roles, departments)
    if institution is not None and any(d.institution_id != institution.id for d in departments):
        raise ServiceError(gettext("只能绑定本机构的科室。"), "departments")
    initial = password or generate_initial_password()
    user = StaffUser(
        username=username,
        display_name=display_name,
        institution_id=institution.id if institution else None,
        region_id=region.id if region else None,
        password_hash=hash_password(initial),
        must_change_password=True,
        role_rows=[StaffRole(role=r.value) for r in sorted(roles)],
        departments=departments,
    )
    db.session.add(user)
    db.session.flush()
    record(actor, "staff.create", user, {"roles": sorted(r.value for r in roles),
                                         "departments": sorted(d.id for d in departments)})
    return user, initial


def update_staff(user: StaffUser, *, display_name: str, roles: Iterable[Role],
                 departments: list[Department], region: Region | None = None, actor: Any) -> StaffUser:
    """Change a staff member's name, roles and departments."""
    roles = _check_roles(roles, user.institution, region if user.institution is None else None)
    _check_handler_departments(roles, departments)
    before_roles = sorted(r.value for r in user.roles)
    before_departments = sorted(d.id for d in user.departments)
    changed = _changes(user, {"display_name": display_name})
    if user.institution is None:
        changed.update(_changes(user, {"region_id": region.id if region else None}))
    after_roles = sorted(r.value for r in roles)
    if after_roles != before_roles:
        user.role_rows = [row for row in user.role_rows if row.role in after_roles] + [
            StaffRole(role=r) for r in after_roles if r not in before_roles]
        changed["roles"] = [before_roles, after_roles]
        # Signed in again, the user gets the new role's pages; nothing is left to a page opened with the old one.
        sessions.end_user_sessions(user, sessions.ROLES_CHANGED)
    after_departments = sorted(d.id for d in departments)
    if after_departments != before_departments:
        user.departments = list(departments)
        changed["departments"] = [before_departments, after_departments]
    if changed:
        record(actor, "staff.update", user, changed)
    return user


def reset_password(user: StaffUser, *, actor: Any) -> str:
    """Give the user a new initial password; they must change it at next login."""
    initial = generate_initial_password()
    user.password_hash = hash_password(initial)
    user.must_change_password = True
    sessions.end_user_sessions(user, sessions.PASSWORD_RESET)
    record(actor, "staff.reset_password", user)
    return initial


def lift_login_delay(user: StaffUser, *, actor: Any) -> StaffUser:
    """Let a user whose sign-ins are being slowed down (organisation.throttle) try again at once."""
    throttle.lift_username_delay(user.username)
    record(actor, "staff.unlock", user)
    return user


def change_password(user: StaffUser, *, current: str, new: str) -> StaffUser:
    """Change one's own password after checking the current one (slowed down after failures) and the policy."""
    wait = throttle.check_wait(throttle.PASSWORD_CHECK, user.id)
    if wait:
        raise TooManyTries(gettext("当前密码输错次数过多，请在 %(n)d 秒后再试。", n=wait), "current_password")
    if not verify_password(user.password_hash, current):
        throttle.check_failed(throttle.PASSWORD_CHECK, user.id)
        raise ServiceError(gettext("当前密码不正确。"), "current_password")
    throttle.check_passed(throttle.PASSWORD_CHECK, user.id)
    if current == new:
        raise ServiceError(gettext("新密码不能与当前密码相同。"), "new_password")
    problems = password_problems(new, username=user.username, display_name=user.display_name)
    if problems:
        raise ServiceError(" ".join(problems), "new_password")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.password_changed_at = utcnow()
    # Every session ends, this one too: the view signs this browser in again with a new token.
    sessions.end_user_sessions(user, sessions.PASSWORD_CHANGED)
    record(user, "staff.change_password", user)
    return user


@dataclass
class LoginResult:
    user: StaffUser | None
    wait: int = 0  # seconds to wait before trying again (the password was not looked at)


def authenticate(username: str, password: str, *, address: str, device: str | None = None) -> LoginResult:
    """Check a sign-in's password. Real and unknown usernames get the same answer in the same time: one password hash is
    computed either way, and the growing delays after failures count both alike (organisation.throttle)."""
    username = (username or "").strip().lower()
    wait = throttle.login_wait(username, address, device)
    if wait:
        return LoginResult(None, wait)
    user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
    right = verify_password(user.password_hash if user is not None else None, password)
    if user is None or not right or not user.active or (user.institution is not None and not user.institution.active):
        throttle.login_failed(username, address, device)
        if user is not None:
            record("login", "staff.login_failed", user)
        return LoginResult(None)
    throttle.login_succeeded(username, device)
    return LoginResult(user)


def complete_sign_in(user: StaffUser) -> StaffUser:
    """The user is signed in (after the password, and the two-factor code where enrolled)."""
    user.last_login_at = utcnow()
    record(user, "staff.login", user)
    return user


def staff_with_roles(institution_id: int, *roles: Role, departments: Iterable[int] | None = None) -> list[StaffUser]:
    """Active staff of an institution holding any of ``roles`` (bound to one of ``departments`` when given)."""
    stmt = (select(StaffUser).join(StaffRole, StaffRole.staff_id == StaffUser.id)
            .where(StaffUser.institution_id == institution_id, StaffUser.active.is_(True),
                   StaffRole.role.in_([Role(r).value for r in roles])))
    if departments is not None:
        wanted = list(departments)
        if not wanted:
            return []
        stmt = stmt.join(staff_department, staff_department.c.staff_id == StaffUser.id).where(
            staff_department.c.department_id.in_(wanted))
    return list(db.session.scalars(stmt.distinct().order_by(StaffUser.username)))


def departments_for(institution: Institution, *, active_only: bool = False) -> list[Department]:
    stmt = select(Department).where(Department.institution_id == institution.id)
    if active_only:
        stmt = stmt.where(Department.active.is_(True))
    return list(db.session.scalars(stmt.order_by(Department.code)))
