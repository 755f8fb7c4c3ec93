"""Co-handling (协办): answers from the other departments, and the rule that the lead replies after them (C13)."""
from __future__ import annotations

from flask_babel import gettext

from complaints.access import handles_department, is_officer
from complaints.models import (
    CaseDepartment,
    CaseRole,
    Complaint,
)
from complaints.workflow import (
    NotAllowed,
    WorkflowError,
    check_version,
    flush_case,
    log_event,
    require_open,
    require_text,
)
from core.audit import record
from core.db import utcnow
from organisation.models import StaffUser


class NotReady(WorkflowError):
    """The lead department may not draft the final reply yet (a co-handler's answer is missing)."""


# Co-handling answers (check C13) ------------------------------------------------------

def co_departments(complaint: Complaint) -> list[CaseDepartment]:
    return [cd for cd in complaint.departments if cd.role == CaseRole.CO and cd.active]


def missing_co_answers(complaint: Complaint) -> list[CaseDepartment]:
    """Co-handlers whose answer is still missing and was not waived by an officer."""
    return [cd for cd in co_departments(complaint) if cd.answered_at is None and cd.waived_at is None]


def check_ready_to_reply(complaint: Complaint) -> None:
    """The lead may draft the final reply only when every co-handler has answered or an officer waived it (C13)."""
    missing = missing_co_answers(complaint)
    if missing:
        names = "、".join(cd.department.name for cd in missing)
        raise NotReady(gettext("协办科室（%(names)s）尚未提交协办意见，主办科室暂不能起草最终答复；"
                               "如确需先行答复，请投诉管理部门说明理由后放行。", names=names))


def record_co_answer(complaint: Complaint, case_department: CaseDepartment, answer: str, *, actor: StaffUser,
                     expected_version: int | None = None) -> CaseDepartment:
    """A co-handling department gives its answer to the lead (its handlers or an officer may record it)."""
    check_version(complaint, expected_version)
    if (case_department.complaint_id != complaint.id or case_department.role != CaseRole.CO
            or not case_department.active):
        raise NotAllowed(gettext("该科室不是本案的协办科室。"))
    if not (is_officer(actor, complaint) or handles_department(actor, complaint, case_department.department_id)):
        raise NotAllowed(gettext("只有该协办科室或投诉管理部门可以填写协办意见。"))
    require_open(complaint)
    answer = require_text(answer, "answer", gettext("请填写协办意见。"))
    revised = case_department.answered_at is not None
    case_department.answer = answer
    case_department.answered_at = utcnow()
    case_department.answered_by_id = actor.id
    log_event(complaint, "co_answer", actor=actor, note=f"{case_department.department.name}：{answer}",
              data={"department": case_department.department_id, "revised": revised})
    flush_case()
    record(actor, "complaint.co_answer", complaint, {"department": case_department.department_id,
                                                     "revised": revised})
    return case_department


def waive_co_answer(complaint: Complaint, case_department: CaseDepartment, reason: str, *, actor: StaffUser,
                    expected_version: int | None = None) -> CaseDepartment:
    """An officer lets the lead reply without a co-handler's answer, with a reason (the override of C13)."""
    check_version(complaint, expected_version)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以放行。"))
    if (case_department.complaint_id != complaint.id or case_department.role != CaseRole.CO
            or not case_department.active):
        raise NotAllowed(gettext("该科室不是本案的协办科室。"))
    if case_department.answered_at is not None or case_department.waived_at is not None:
        raise NotAllowed(gettext("该协办科室已答复或已放行。"))
    require_open(complaint)
    reason = require_text(reason, "reason", gettext("请写明不等待协办意见的理由。"))
    case_department.waived_at = utcnow()
    case_department.waived_by_id = actor.id
    case_department.waive_reason = reason
    log_event(complaint, "co_waived", actor=actor,
              note=gettext("不等待 %(dept)s 的协办意见：%(reason)s", dept=case_department.department.name,
                           reason=reason),
              data={"department": case_department.department_id})
    flush_case()
    record(actor, "complaint.co_waived", complaint, {"department": case_department.department_id})
    return case_department
