"""`flask create-admin`: the first platform admin of an install."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from core.audit import AuditEntry
from core.extensions import db
from organisation.models import Role, StaffUser
from organisation.passwords import verify_password


def find_user(username: str) -> StaffUser | None:
    return db.session.scalar(select(StaffUser).where(StaffUser.username == username))


def staff_count() -> int:
    return db.session.scalar(select(func.count()).select_from(StaffUser))


def test_create_admin_makes_a_platform_admin_who_must_change_the_password(app, ctx):
    result = app.test_cli_runner().invoke(args=["create-admin", "Ops-Admin", "--name", "运维管理员",
                                                "--password", "Strong-pass-2026"])
    assert result.exit_code == 0, result.output
    assert "Platform admin ops-admin created." in result.output
    assert "Initial password" not in result.output

    user = find_user("ops-admin")  # usernames are stored in lower case
    assert user.display_name == "运维管理员"
    assert user.roles == {Role.PLATFORM_ADMIN}
    assert user.institution_id is None and user.region_id is None
    assert user.must_change_password is True
    assert verify_password(user.password_hash, "Strong-pass-2026")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "staff.create",
                                                       AuditEntry.target_id == str(user.id)))
    assert entry.actor_label == "cli"


def test_create_admin_without_a_password_generates_one_and_shows_it_once(app, ctx):
    result = app.test_cli_runner().invoke(args=["create-admin", "second-admin"], input="\n\n")
    assert result.exit_code == 0, result.output
    match = re.search(r"Initial password \(change at first login\): (\S+)", result.output)
    assert match, result.output
    user = find_user("second-admin")
    assert verify_password(user.password_hash, match.group(1))
    assert user.must_change_password is True


def test_create_admin_rejects_a_weak_password(app, ctx):
    before = staff_count()
    result = app.test_cli_runner().invoke(args=["create-admin", "weak-admin", "--password", "short1"])
    assert result.exit_code == 1
    assert "密码至少需要 12 个字符。" in result.output
    assert find_user("weak-admin") is None
    assert staff_count() == before


def test_create_admin_rejects_a_password_containing_the_username(app, ctx):
    result = app.test_cli_runner().invoke(args=["create-admin", "wang", "--password", "wang-2026-hospital"])
    assert result.exit_code == 1
    assert "密码不能包含用户名。" in result.output
    assert find_user("wang") is None


def test_create_admin_with_a_taken_username_gives_a_clear_error(app, ctx):
    before = staff_count()
    result = app.test_cli_runner().invoke(args=["create-admin", "platform", "--password", "Strong-pass-2026"])
    assert result.exit_code == 1
    assert "Error: 用户名 platform 已存在。" in result.output
    assert "Traceback" not in result.output
    assert staff_count() == before
