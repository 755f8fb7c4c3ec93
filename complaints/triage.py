"""Triage: accept, settle on the spot, or decline a registered complaint (一口受理, 首诉负责).

* one desk accepts and routes — "建立投诉一口受理制度 … 负责受理投诉的科室根据投诉内容分配至相关
  科室处理。明确投诉回复责任科室" (seed 003, item 33); "对患者投诉做到首接负责 … 健全并落实患者投诉、
  接待、受理、处理、反馈制度" (seed 004, 一(五));
* what can be settled on the spot is settled on the spot and recorded as such; otherwise the
  complainant hears back within 5 working days, 10 when several departments must be coordinated
  (ComplaintSettings.standard_days / complex_days), counted from the day of receipt: the clock
  started when the case was registered, and triage has its own target within it
  (ComplaintSettings.triage_days; complaints.deadlines.triage_late);
* some complaints are not accepted (court, mediation, an authority, repeated without new facts …),
  and the complainant is told why (check C11: the notice is required).

Every service checks the acting user, takes the version of the page the user acted on
(``expected_version``: a stale page changes nothing, see workflow.ConcurrentChange), flushes,
writes a timeline event and one audit entry. Views commit once. Routing is complaints.routing.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from complaints.deadlines import start_clock
from complaints.models import (
    Complaint,
    DeclineReason,
)
from complaints.workflow import (
    Action,
    flush_case,
    require_text,
    transition,
)
from core.db import utcnow
from organisation.models import StaffUser

# What the complainant is told when a complaint is not accepted (the officer edits it before sending).
DECLINE_NOTICES: dict[DeclineReason, Any] = {
    DeclineReason.IN_COURT: _l(
        "您好！您反映的事项已向人民法院提起诉讼。根据《医疗机构投诉管理办法》，已进入诉讼程序的事项，"
        "本院投诉管理部门不再作为投诉受理，将依法配合人民法院的审理工作。感谢您的理解。"),
    DeclineReason.IN_MEDIATION: _l(
        "您好！您反映的事项已申请人民调解。根据《医疗机构投诉管理办法》，已申请人民调解的事项，"
        "本院投诉管理部门不再作为投诉受理，将积极配合医疗纠纷人民调解委员会的调解工作。感谢您的理解。"),
    DeclineReason.BEFORE_AUTHORITY: _l(
        "您好！您反映的事项已由卫生健康主管部门或信访部门受理。为避免重复处理，本院投诉管理部门不再作为投诉受理，"
        "将配合相关部门的处理工作，处理结果以其答复为准。感谢您的理解。"),
    DeclineReason.REPEATED: _l(
        "您好！您反映的事项本院已按程序处理并答复。本次投诉未提供新的事实和证据，根据《医疗机构投诉管理办法》不再重复受理。"
        "如您有新的情况和证据材料，欢迎随时提供，我们将重新予以处理；您也可以依法通过医疗纠纷人民调解、"
        "向卫生健康主管部门申请行政调解或向人民法院起诉等途径解决。"),
    DeclineReason.NO_SUBJECT: _l(
        "您好！您的投诉没有明确的投诉对象和具体事实，本院暂无法受理。欢迎您补充具体的时间、地点、科室或人员及经过后重新提出，"
        "我们将及时处理。"),
    DeclineReason.CRIMINAL: _l(
        "您好！您反映的事项属于治安案件或刑事案件，不属于医疗投诉的受理范围，请向公安机关报案，本院将积极配合调查。"
        "感谢您的理解。"),
}


def default_decline_notice(reason: DeclineReason | str) -> str:
    """The editable default notice for a decline reason."""
    return str(DECLINE_NOTICES[DeclineReason(reason)])


# Triage ----------------------------------------------------------------------------

def _take_first_contact(complaint: Complaint, actor: StaffUser) -> None:
    """A complaint filed by the patient online has no first-contact officer yet: the officer who triages it is."""
    if complaint.first_contact_id is None:
        complaint.first_contact_id = actor.id
        complaint.first_contact = actor


def accept_complaint(complaint: Complaint, *, actor: StaffUser, expected_version: int | None = None) -> Complaint:
    """Accept a registered complaint. Its clock started at receipt (intake): accepting does not move the deadline.

    A case registered before the clock started at receipt, and not given its deadline since
    (complaints.deadlines.recompute_open_deadlines does that), gets it now, still counted from its receipt.
    """
    transition(complaint, Action.ACCEPT, actor=actor, expected_version=expected_version)
    _take_first_contact(complaint, actor)
    if complaint.working_days is None:
        start_clock(complaint, actor=actor)
    flush_case()
    return complaint


def settle_on_the_spot(complaint: Complaint, note: str, *, actor: StaffUser,
                       expected_version: int | None = None) -> Complaint:
    """Record a complaint settled on the spot (当场办结) with how it was settled; it is still registered and counted."""
    note = require_text(note, "note", gettext("请写明当场处理的经过和结果。"))
    transition(complaint, Action.SETTLE, actor=actor, expected_version=expected_version, note=note)
    _take_first_contact(complaint, actor)
    now = utcnow()
    complaint.settlement_note = note
    complaint.first_response_at = complaint.first_response_at or now
    complaint.replied_at = complaint.replied_at or now
    complaint.closed_at = now
    complaint.resolved = True
    flush_case()
    return complaint


def decline_complaint(complaint: Complaint, reason: DeclineReason, notice_text: str, *, actor: StaffUser,
                      expected_version: int | None = None) -> Complaint:
    """Decline a complaint for a legal reason; the notice telling the complainant why is required (C11).

    The view sends the notice (send_decline_notice job) after the commit when the case has a phone number.
    """
    reason = DeclineReason(reason)
    notice_text = require_text(notice_text, "notice", gettext("请填写告知投诉人的不予受理说明。"))
    transition(complaint, Action.DECLINE, actor=actor, expected_version=expected_version, note=str(reason.label),
               data={"reason": reason.value})
    _take_first_contact(complaint, actor)
    now = utcnow()
    complaint.decline_reason = reason
    complaint.decline_notice = notice_text
    complaint.first_response_at = complaint.first_response_at or now
    complaint.closed_at = now
    flush_case()
    return complaint
