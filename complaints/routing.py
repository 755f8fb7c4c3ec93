"""Routing: which department handles a case, co-handling, transfers, and the rules that propose the department.

"建立投诉一口受理制度，明确一个科室受理医德医风、医疗质量安全、安全保卫和其他投诉，负责受理投诉的科室
根据投诉内容分配至相关科室处理。明确投诉回复责任科室" (seed 003, item 33). The officer's desk accepts;
routing rules *propose* the department, the officer confirms or changes it. Several departments may
handle one case: one lead (主办, who answers the complainant) and co-handlers (协办, who answer the
lead, each with a sub-deadline); the case then follows the 10-working-day rule ("涉及多个科室，需组织、
协调相关部门共同研究的，应当于接到投诉之日起10个工作日内向患者反馈"). A transfer (转办) names a reason;
the first-contact officer stays responsible throughout (首诉负责制: "不得推诿、搪塞").
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext
from sqlalchemy import select

from complaints.access import is_officer
from complaints.deadlines import update_deadline
from complaints.models import CaseDepartment, CaseRole, Category, Complaint, DeadlineRule, RoutingRule
from complaints.workflow import Action, NotAllowed, check_version, flush_case, log_event, require_open, transition
from core.audit import record
from core.extensions import db
from core.services import ServiceError, clean_text
from organisation.models import Department, Institution, StaffUser, Touchpoint

KEYWORD_SPLIT = re.compile(r"[;；,，、\s]+")


def split_keywords(keywords: str | None) -> list[str]:
    return [k for k in KEYWORD_SPLIT.split(keywords or "") if k]


# Proposing a department -------------------------------------------------------------

@dataclass
class Proposal:
    department: Department | None
    rule: RoutingRule | None = None
    why: str = ""


def _rule_matches(rule: RoutingRule, complaint: Complaint, concerned: set[int], text: str) -> bool:
    if rule.category_id is not None and rule.category_id != complaint.category_id:
        return False
    if rule.touchpoint_id is not None and rule.touchpoint_id != complaint.touchpoint_id:
        return False
    if rule.department_id is not None and rule.department_id not in concerned:
        return False
    words = split_keywords(rule.keywords)
    return not words or any(w.lower() in text for w in words)


def concerned_department_ids(complaint: Complaint) -> set[int]:
    return {d.id for d in complaint.concerned_departments}


def propose(complaint: Complaint) -> Proposal:
    """The department the rules propose, and why (the first active rule by priority whose conditions all hold).

    A rule's set conditions must all hold: category, touchpoint, a department the complaint concerns,
    any one of its keywords in the subject or description. Without a matching rule: the touchpoint's
    department, else the one department the complaint concerns.
    """
    rules = db.session.scalars(select(RoutingRule).where(
        RoutingRule.institution_id == complaint.institution_id, RoutingRule.active.is_(True))
        .order_by(RoutingRule.priority, RoutingRule.id))
    concerned = concerned_department_ids(complaint)
    text = f"{complaint.subject or ''}\n{complaint.description or ''}".lower()
    for rule in rules:
        if _rule_matches(rule, complaint, concerned, text) and rule.target_department.active:
            return Proposal(rule.target_department, rule, gettext("分派规则 #%(id)d（优先级 %(p)d）",
                                                                  id=rule.id, p=rule.priority))
    if complaint.touchpoint_id is not None:
        touchpoint = db.session.get(Touchpoint, complaint.touchpoint_id)
        if touchpoint is not None and touchpoint.department.active:
            return Proposal(touchpoint.department, None, gettext("服务点“%(name)s”所属科室", name=touchpoint.name))
    if len(concerned) == 1:
        department = db.session.get(Department, next(iter(concerned)))
        if department is not None and department.active:
            return Proposal(department, None, gettext("投诉涉及的科室"))
    return Proposal(None)


# Routing rules (admin) ----------------------------------------------------------------

def _department_of(institution: Institution, department_id: int | None, field: str, *,
                   required: bool = False) -> Department | None:
    if department_id is None:
        if required:
            raise ServiceError(gettext("请选择科室。"), field)
        return None
    department = db.session.get(Department, department_id)
    if department is None or department.institution_id != institution.id:
        raise ServiceError(gettext("科室不存在。"), field)
    if required and not department.active:
        raise ServiceError(gettext("该科室已停用。"), field)
    return department


def _rule_values(institution: Institution, *, priority: int, category_id: int | None, touchpoint_id: int | None,
                 department_id: int | None, keywords: str, target_department_id: int) -> dict[str, Any]:
    if category_id is not None:
        category = db.session.get(Category, category_id)
        if category is None or category.institution_id not in (None, institution.id):
            raise ServiceError(gettext("投诉类别不存在。"), "category_id")
    if touchpoint_id is not None:
        touchpoint = db.session.get(Touchpoint, touchpoint_id)
        if touchpoint is None or touchpoint.institution_id != institution.id:
            raise ServiceError(gettext("服务点不存在。"), "touchpoint_id")
    _department_of(institution, department_id, "department_id")
    _department_of(institution, target_department_id, "target_department_id", required=True)
    words = split_keywords(keywords)
    joined = ";".join(dict.fromkeys(words))
    if len(joined) > 200:
        raise ServiceError(gettext("关键词总长度不能超过 200 个字符。"), "keywords")
    return {"priority": int(priority), "category_id": category_id, "touchpoint_id": touchpoint_id,
            "department_id": department_id, "keywords": joined, "target_department_id": target_department_id}


def create_routing_rule(institution: Institution, *, priority: int, category_id: int | None,
                        touchpoint_id: int | None, department_id: int | None, keywords: str,
                        target_department_id: int, actor: StaffUser) -> RoutingRule:
    """Add a rule proposing ``target_department_id`` for cases that meet all its set conditions."""
    values = _rule_values(institution, priority=priority, category_id=category_id, touchpoint_id=touchpoint_id,
                          department_id=department_id, keywords=keywords, target_department_id=target_department_id)
    rule = RoutingRule(institution_id=institution.id, active=True, **values)
    db.session.add(rule)
    db.session.flush()
    record(actor, "routing_rule.create", rule, values)
    return rule


def update_routing_rule(rule: RoutingRule, *, priority: int, category_id: int | None, touchpoint_id: int | None,
                        department_id: int | None, keywords: str, target_department_id: int,
                        actor: StaffUser) -> RoutingRule:
    """Change a routing rule; the audit entry keeps what changed."""
    institution = db.session.get_one(Institution, rule.institution_id)
    values = _rule_values(institution, priority=priority, category_id=category_id, touchpoint_id=touchpoint_id,
                          department_id=department_id, keywords=keywords, target_department_id=target_department_id)
    changes = {k: [getattr(rule, k), v] for k, v in values.items() if getattr(rule, k) != v}
    for key, value in values.items():
        setattr(rule, key, value)
    db.session.flush()
    if changes:
        record(actor, "routing_rule.update", rule, changes)
    return rule


def set_routing_rule_active(rule: RoutingRule, active: bool, *, actor: StaffUser) -> RoutingRule:
    """Switch a rule on or off (rules are never deleted: the audit trail points at them)."""
    if rule.active != active:
        rule.active = active
        db.session.flush()
        record(actor, "routing_rule.activate" if active else "routing_rule.deactivate", rule)
    return rule


# Assigning, co-handlers, transfers ------------------------------------------------------

def _case_department(complaint: Complaint, department: Department, field: str = "lead") -> Department:
    if department is None or department.institution_id != complaint.institution_id:
        raise ServiceError(gettext("科室不存在。"), field)
    if not department.active:
        raise ServiceError(gettext("科室“%(name)s”已停用。", name=department.name), field)
    return department


def _row_for(complaint: Complaint, department: Department) -> CaseDepartment | None:
    return next((cd for cd in complaint.departments if cd.department_id == department.id), None)


def _set_row(complaint: Complaint, department: Department, role: CaseRole) -> CaseDepartment:
    row = _row_for(complaint, department)
    if row is None:
        row = CaseDepartment(department=department, department_id=department.id, role=role, active=True)
        complaint.departments.append(row)
    else:
        row.role, row.active = role, True
        if role == CaseRole.LEAD:
            row.due_at = None
    return row


def assign_department(complaint: Complaint, lead: Department, *, co: Iterable[Department] = (), actor: StaffUser,
                      expected_version: int | None = None) -> Complaint:
    """Route an accepted case to its lead department and any co-handlers; co-handling makes it a 10-day case."""
    lead = _case_department(complaint, lead, "lead")
    co_list = [_case_department(complaint, d, "co") for d in dict.fromkeys(co) if d.id != lead.id]
    names = "、".join(d.name for d in co_list)
    note = gettext("主办：%(lead)s", lead=lead.name) + (gettext("；协办：%(co)s", co=names) if co_list else "")
    transition(complaint, Action.ASSIGN, actor=actor, expected_version=expected_version, note=note,
               data={"lead": lead.id, "co": [d.id for d in co_list]})
    complaint.lead_department_id = lead.id
    complaint.lead_department = lead
    _set_row(complaint, lead, CaseRole.LEAD)
    for department in co_list:
        _set_row(complaint, department, CaseRole.CO)
    rule = DeadlineRule.COMPLEX if co_list else (complaint.deadline_rule or DeadlineRule.STANDARD)
    _recompute_for_rule(complaint, rule, actor=actor)
    flush_case()
    return complaint


def _recompute_for_rule(complaint: Complaint, rule: str, *, actor: StaffUser) -> None:
    old_due, old_rule = complaint.due_date, complaint.deadline_rule
    deadline = update_deadline(complaint, rule=rule)
    if old_due != deadline.due_date or old_rule != rule:
        note = gettext("涉及多个科室，按 %(days)d 个工作日重新计算办理期限：%(date)s。", days=deadline.working_days,
                       date=deadline.due_date.isoformat()) if rule == DeadlineRule.COMPLEX else \
            gettext("办理期限：%(date)s。", date=deadline.due_date.isoformat())
        log_event(complaint, "deadline_set", actor=actor, note=note,
                  data={"rule": rule, "from": old_due.isoformat() if old_due else None,
                        "to": deadline.due_date.isoformat(), "provisional": deadline.provisional})


def add_co_department(complaint: Complaint, department: Department, *, actor: StaffUser,
                      expected_version: int | None = None) -> CaseDepartment:
    """Ask one more department to co-handle an open case; the case follows the 10-working-day rule from then on."""
    check_version(complaint, expected_version)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以增加协办科室。"))
    require_open(complaint)
    department = _case_department(complaint, department, "department")
    existing = _row_for(complaint, department)
    if department.id == complaint.lead_department_id or (existing is not None and existing.active):
        raise ServiceError(gettext("该科室已在办理本案。"), "department")
    row = _set_row(complaint, department, CaseRole.CO)
    log_event(complaint, "co_added", actor=actor, note=gettext("增加协办科室：%(name)s", name=department.name),
              data={"department": department.id})
    _recompute_for_rule(complaint, DeadlineRule.COMPLEX, actor=actor)
    flush_case()
    record(actor, "complaint.co_added", complaint, {"department": department.id})
    return row


def transfer_complaint(complaint: Complaint, new_lead: Department, reason: str, *, actor: StaffUser,
                       expected_version: int | None = None) -> Complaint:
    """Hand the case to another lead department with a reason (转办); the first-contact officer stays responsible."""
    reason = clean_text(reason, field="reason", required=gettext("请写明转办理由。"))
    new_lead = _case_department(complaint, new_lead, "lead")
    if new_lead.id == complaint.lead_department_id:
        raise ServiceError(gettext("请选择另一个科室。"), "lead")
    old_id = complaint.lead_department_id
    transition(complaint, Action.TRANSFER, actor=actor, expected_version=expected_version,
               note=gettext("转至 %(name)s：%(reason)s", name=new_lead.name, reason=reason),
               data={"from": old_id, "to": new_lead.id})
    for row in complaint.departments:
        if row.role == CaseRole.LEAD and row.department_id != new_lead.id:
            row.active = False
    _set_row(complaint, new_lead, CaseRole.LEAD)
    complaint.lead_department_id = new_lead.id
    complaint.lead_department = new_lead
    flush_case()
    return complaint


def receive_transfer(complaint: Complaint, *, actor: StaffUser, expected_version: int | None = None) -> Complaint:
    """The new lead department (or an officer) takes up a transferred case."""
    transition(complaint, Action.RECEIVE, actor=actor, expected_version=expected_version)
    flush_case()
    return complaint
