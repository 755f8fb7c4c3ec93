"""Factory helpers that build rows through the services, as the app does."""
from __future__ import annotations

import itertools
from collections.abc import Iterable

from sqlalchemy import select

from core.extensions import db
from organisation import services
from organisation.models import Department, Institution, Region, Role, StaffUser, Touchpoint
from organisation.passwords import hash_password

PASSWORD = "Test-password-2026"
_counter = itertools.count(1)
_PASSWORD_HASH: str | None = None


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def demo_institution(key: str = "rmyy") -> Institution:
    code = {"rmyy": "DEMO-510104-001", "zyy": "DEMO-510104-002", "sq": "DEMO-510104-003"}[key]
    return db.session.scalar(select(Institution).where(Institution.registration_code == code))


def demo_user(username: str) -> StaffUser:
    return db.session.scalar(select(StaffUser).where(StaffUser.username == username))


def make_region(parent: Region | None = None, **values) -> Region:
    values.setdefault("code", str(600000 + next(_counter)))
    values.setdefault("name", unique("测试区域"))
    values.setdefault("level", "city" if parent else "province")
    return services.create_region(parent=parent, actor="test", **values)


def make_institution(region: Region | None = None, **values) -> Institution:
    region = region or make_region()
    values.setdefault("name", unique("测试医院"))
    values.setdefault("registration_code", unique("TEST-"))
    values.setdefault("level", "secondary")
    values.setdefault("grade", "a")
    values.setdefault("category", "general")
    return services.create_institution(actor="test", region_id=region.id, **values)


def make_department(institution: Institution, **values) -> Department:
    values.setdefault("code", unique("D"))
    values.setdefault("name", unique("科室"))
    values.setdefault("kind", "clinical")
    return services.create_department(institution, actor="test", **values)


def make_touchpoint(institution: Institution, department: Department | None = None, **values) -> Touchpoint:
    department = department or make_department(institution)
    values.setdefault("code", unique("T"))
    values.setdefault("name", unique("窗口"))
    values.setdefault("kind", "window")
    return services.create_touchpoint(institution, department=department, actor="test", **values)


def make_staff(roles: Iterable[Role], institution: Institution | None = None, *, region: Region | None = None,
               departments: list[Department] | None = None, must_change_password: bool = False,
               **values) -> StaffUser:
    """A staff user with a known password (hashed once per run: scrypt is slow on purpose)."""
    global _PASSWORD_HASH
    roles = list(roles)
    if Role.DEPARTMENT_HANDLER in roles and not departments:
        departments = [make_department(institution)]
    values.setdefault("username", unique("user"))
    values.setdefault("display_name", "测试人员")
    user, _initial = services.create_staff(roles=roles, institution=institution, region=region,
                                           departments=departments, actor="test", password="x", **values)
    if _PASSWORD_HASH is None:
        _PASSWORD_HASH = hash_password(PASSWORD)
    user.password_hash = _PASSWORD_HASH
    user.must_change_password = must_change_password
    db.session.flush()
    return user


def login(client, user: StaffUser) -> None:
    """Log a client in by session cookie, as the login page would after a password check: a server-side
    session (organisation.sessions) and its token in the cookie."""
    from organisation.auth import SESSION_TOKEN
    from organisation.sessions import start_session

    token = start_session(user)
    db.session.commit()  # as the login page does (in the per-test transaction: rolled back after the test)
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session[SESSION_TOKEN] = token
