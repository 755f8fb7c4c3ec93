"""What the survey side waits on one person for: the survey part of the home page's to-do list.

Whoever works service-recovery alerts (handlers for their departments, officers for the hospital) sees
the alerts nobody has taken up; a follow-up nurse sees the discharge calls due. The counts are those of
the alert list and the call list (survey.alerts, survey.followup), and each item links there.
"""
from __future__ import annotations

from flask import Flask, url_for
from flask_babel import gettext

from core.clock import local_today
from organisation.models import Institution, Role, StaffUser
from organisation.scope import Permission, can, department_scope
from organisation.todo import TodoItem, register_todo
from survey import alerts, followup
from survey.models import AlertStatus


def todo(user: StaffUser, institution: Institution) -> list[TodoItem]:
    """The survey part of the user's to-do list at their own hospital."""
    if user.institution_id != institution.id:
        return []
    items = []
    scope = department_scope(user, institution)
    if can(user, Permission.HANDLE_ALERTS, institution):
        items.append(TodoItem(gettext("待处理的服务补救提醒"), alerts.open_alert_count(institution, scope),
                              url_for("survey_staff.alerts", institution_id=institution.id,
                                      status=AlertStatus.OPEN.value), order=30))
    if user.has_role(Role.FOLLOWUP_NURSE) and can(user, Permission.FOLLOW_UP, institution):
        items.append(TodoItem(gettext("待回访的出院患者"),
                              followup.due_count(institution, today=local_today(), department_ids=scope),
                              url_for("survey_staff.followup_calls", institution_id=institution.id), order=31))
    return items


def init_app(app: Flask) -> None:
    register_todo(app, todo)
