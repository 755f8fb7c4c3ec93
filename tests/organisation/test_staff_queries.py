"""The one "staff with role X in institution Y" query every notice uses."""
from __future__ import annotations

from organisation.models import Role
from organisation.services import set_active, staff_with_roles
from tests.factories import make_department, make_institution, make_staff


def test_active_staff_of_the_institution_with_any_of_the_roles_once_each(ctx):
    home, other = make_institution(), make_institution()
    both = make_staff([Role.COMPLAINT_OFFICER, Role.LEADERSHIP], home)
    officer = make_staff([Role.COMPLAINT_OFFICER], home)
    make_staff([Role.FOLLOWUP_NURSE], home)
    make_staff([Role.COMPLAINT_OFFICER], other)
    gone = make_staff([Role.COMPLAINT_OFFICER], home)
    set_active(gone, False, actor="test")
    found = staff_with_roles(home.id, Role.COMPLAINT_OFFICER, Role.LEADERSHIP)
    assert sorted(u.id for u in found) == sorted([both.id, officer.id])


def test_handlers_of_given_departments_only(ctx):
    home = make_institution()
    mine, theirs = make_department(home), make_department(home)
    handler = make_staff([Role.DEPARTMENT_HANDLER], home, departments=[mine])
    make_staff([Role.DEPARTMENT_HANDLER], home, departments=[theirs])
    assert staff_with_roles(home.id, Role.DEPARTMENT_HANDLER, departments=[mine.id]) == [handler]
    assert staff_with_roles(home.id, Role.DEPARTMENT_HANDLER, departments=[]) == []
