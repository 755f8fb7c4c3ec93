"""Correcting a case: its registration facts, and merging a duplicate into the case that answers for both.

Officers correct what was registered wrongly — the subject, the category, the channel (and its reference),
the departments the complaint concerns — on any case not merged away. Every change keeps its old and new
values on the timeline and in the audit trail, and a page older than the case is refused (409) like any
other action. The lead department changes only by a transfer (complaints.routing.transfer_complaint): a
correction that names another lead department is that transfer, with the correction's reason as its reason.
Before routing there is no lead department: the departments concerned are what the routing proposal reads.

A duplicate — the same matter registered twice: a call and a QR form, two relatives, a 12345 work order
about a case already open — is merged into the case that answers for both (acceptance check C12). The
duplicate moves to Status.MERGED with ``merged_into_id`` set and is read-only from then on; both timelines
are kept and name each other; the duplicate's attachments are shown on the case it joined; the
complainant's lookup of the duplicate shows that case's progress (complaints.lookup); the statistics
count the matter once (complaints.stats leaves merged cases out).
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import or_, select

from complaints import routing
from complaints.access import is_officer
from complaints.categories import category_label
from complaints.intake import STAFF_CHANNELS
from complaints.lookup import normalise_case_number
from complaints.models import CasePause, Category, Channel, Complaint, Status
from complaints.replies import check_writable
from complaints.workflow import (
    Action,
    NotAllowed,
    WorkflowError,
    check_version,
    log_event,
    touch,
    transition,
)
from core.audit import record
from core.clock import local_today
from core.db import utcnow
from core.extensions import db
from core.services import clean_text
from organisation.models import Department, StaffUser

MAX_SUBJECT = 120
MAX_REASON = 500
# Possible duplicates offered on the case page: cases received this close to the case.
CANDIDATE_WINDOW = timedelta(days=90)


class CorrectionError(WorkflowError):
    """A correction or a merge cannot be made as given; the message (and field) go back to the form."""


# Editing the registration ------------------------------------------------------------------

@dataclass
class Correction:
    """What one correction changed: (label, old, new) for the timeline, and what the view does after the commit."""

    changes: list[tuple[str, str, str]] = field(default_factory=list)
    data: dict[str, list[Any]] = field(default_factory=dict)
    transferred_to: Department | None = None   # a new lead department: notify it

    @property
    def note(self) -> str:
        return "\n".join(gettext("%(what)s：%(old)s → %(new)s", what=what, old=old or "—", new=new or "—")
                         for what, old, new in self.changes)


def _category(complaint: Complaint, category: Category | None) -> Category:
    if category is None:
        raise CorrectionError(gettext("请选择投诉类别。"), "category")
    if category.institution_id not in (None, complaint.institution_id):
        raise CorrectionError(gettext("所选投诉类别不可用，请重新选择。"), "category")
    if not category.active and category.id != complaint.category_id:
        raise CorrectionError(gettext("所选投诉类别已停用，请重新选择。"), "category")
    return category


def _channel(complaint: Complaint, channel: Channel | str, channel_ref: str) -> tuple[Channel, str]:
    try:
        channel = Channel(channel)
    except ValueError:
        raise CorrectionError(gettext("请选择来源渠道。"), "channel") from None
    if channel != complaint.channel and channel not in STAFF_CHANNELS:
        # Self-service and survey-alert cases are recorded as such by the system, never chosen by hand.
        raise CorrectionError(gettext("该渠道由系统记录，不能手动选择。"), "channel")
    channel_ref = clean_text(channel_ref, field="channel_ref", label=gettext("来源编号"), limit=60,
                             error=CorrectionError)
    if channel == Channel.HOTLINE_12345 and not channel_ref:
        raise CorrectionError(gettext("12345 热线转办须填写工单编号。"), "channel_ref")
    return channel, channel_ref


def _departments(complaint: Complaint, departments: Iterable[Department]) -> list[Department]:
    current = {d.id for d in complaint.concerned_departments}
    chosen = list(dict.fromkeys(departments))
    for department in chosen:
        if department.institution_id != complaint.institution_id:
            raise CorrectionError(gettext("所选科室不属于本院。"), "departments")
        if not department.active and department.id not in current:
            raise CorrectionError(gettext("科室“%(name)s”已停用。", name=department.name), "departments")
    return sorted(chosen, key=lambda d: d.code)


def _names(departments: Iterable[Department]) -> str:
    return gettext("、").join(d.name for d in departments)


def correct_case(complaint: Complaint, *, subject: str, category: Category | None, channel: Channel | str,
                 channel_ref: str = "", departments: Sequence[Department] = (), lead: Department | None = None,
                 reason: str = "", actor: StaffUser, expected_version: int | None = None) -> Correction:
    """Correct a case's subject, category, channel and departments concerned (officers; audited with old values).

    ``lead`` (None: unchanged) names another lead department: that is a transfer, made by
    complaints.routing.transfer_complaint with ``reason`` as its reason, in the transfer's own rules.
    A category of quality and safety pages nobody by itself, as at registration: the officer flags the
    emergency on the case page (emergency.flag_emergency) when it is one.
    """
    check_version(complaint, expected_version)
    if not is_officer(actor, complaint):
        raise NotAllowed(gettext("只有投诉管理部门可以更正案件信息。"))
    check_writable(complaint)
    subject = clean_text(subject, field="subject", label=gettext("事由"), limit=MAX_SUBJECT,
                         required=gettext("请填写事由。"), error=CorrectionError)
    category = _category(complaint, category)
    channel, channel_ref = _channel(complaint, channel, channel_ref)
    chosen = _departments(complaint, departments)
    reason = clean_text(reason, field="reason", label=gettext("更正原因"), limit=MAX_REASON, error=CorrectionError)
    new_lead = lead if lead is not None and lead.id != complaint.lead_department_id else None
    if new_lead is not None and complaint.lead_department_id is None:
        raise CorrectionError(gettext("案件尚未分派，请用“分派科室”选择主办科室。"), "lead")

    result = Correction()
    old_category = db.session.get(Category, complaint.category_id) if complaint.category_id else None
    if subject != complaint.subject:
        result.changes.append((gettext("事由"), complaint.subject, subject))
        result.data["subject"] = [complaint.subject, subject]
        complaint.subject = subject
    if old_category is None or category.id != old_category.id:
        result.changes.append((gettext("投诉类别"), category_label(old_category), category_label(category)))
        result.data["category"] = [old_category.code if old_category else None, category.code]
        complaint.category_id = category.id
        complaint.category = category
    if channel != complaint.channel:
        result.changes.append((gettext("来源渠道"), str(Channel(complaint.channel).label), str(channel.label)))
        result.data["channel"] = [Channel(complaint.channel).value, channel.value]
        complaint.channel = channel
    if channel_ref != (complaint.channel_ref or ""):
        result.changes.append((gettext("来源编号"), complaint.channel_ref or "", channel_ref))
        result.data["channel_ref"] = [complaint.channel_ref or "", channel_ref]
        complaint.channel_ref = channel_ref
    old_departments = sorted(complaint.concerned_departments, key=lambda d: d.code)
    if [d.id for d in chosen] != [d.id for d in old_departments]:
        result.changes.append((gettext("涉及科室"), _names(old_departments), _names(chosen)))
        result.data["departments"] = [[d.id for d in old_departments], [d.id for d in chosen]]
        complaint.concerned_departments = chosen
    if not result.changes and new_lead is None:
        raise CorrectionError(gettext("没有修改任何内容。"))

    if result.changes:
        note = result.note + (("\n" + gettext("原因：%(reason)s", reason=reason)) if reason else "")
        log_event(complaint, "edited", actor=actor, note=note, data=result.data)
        touch(complaint)
        record(actor, "complaint.edit", complaint, {**result.data, **({"reason": reason} if reason else {})})
    if new_lead is not None:
        # Re-routing has one path: the transfer, with its own rules (status, reason, an active department).
        routing.transfer_complaint(complaint, new_lead, reason, actor=actor)
        result.transferred_to = new_lead
    return result


# Merging a duplicate --------------------------------------------------------------------------

def find_case(institution_id: int, case_number: str) -> Complaint | None:
    """The case of this institution with this number, however it was typed ("ts2026-42", full-width …), or
    by its sequence alone ("303", "00303": this year's case, else last year's)."""
    text = unicodedata.normalize("NFKC", case_number or "").strip()
    if text.isdigit() and len(text) <= 7:
        this_year = local_today().year
        for year in (this_year, this_year - 1):
            found = db.session.scalars(select(Complaint).where(
                Complaint.institution_id == institution_id,
                Complaint.case_number.like(f"%{year}-{int(text):05d}")).limit(2)).all()
            if len(found) == 1:
                return found[0]
        return None
    number = normalise_case_number(case_number)
    return db.session.scalar(select(Complaint).where(Complaint.institution_id == institution_id,
                                                     Complaint.case_number == number))


def merged_cases(complaint: Complaint) -> list[Complaint]:
    """The duplicates merged into ``complaint``, oldest first."""
    return list(db.session.scalars(select(Complaint).where(Complaint.merged_into_id == complaint.id)
                                   .order_by(Complaint.received_at, Complaint.id)))


def merge_candidates(complaint: Complaint, *, limit: int = 5) -> list[Complaint]:
    """Cases that may be the same matter: the same complainant's number or the same subject, received within
    CANDIDATE_WINDOW, still answerable (a merge target). The number is compared, never shown."""
    same = [Complaint.subject == complaint.subject]
    if (complaint.complainant_phone or "").strip():
        same.append(Complaint.complainant_phone == complaint.complainant_phone)
    return list(db.session.scalars(
        select(Complaint).where(
            Complaint.institution_id == complaint.institution_id, Complaint.id != complaint.id,
            Complaint.merged_into_id.is_(None), Complaint.status.not_in(Status.values(Status.finished())),
            Complaint.received_at >= complaint.received_at - CANDIDATE_WINDOW,
            Complaint.received_at <= complaint.received_at + CANDIDATE_WINDOW, or_(*same))
        .order_by(Complaint.received_at, Complaint.id).limit(limit)))


def _end_pause(complaint: Complaint) -> None:
    """A merged case's clock is over: an open pause ends now (the case it joined keeps its own clock)."""
    if complaint.paused_since is None:
        return
    now = utcnow()
    for pause in db.session.scalars(select(CasePause).where(CasePause.complaint_id == complaint.id,
                                                            CasePause.ended_at.is_(None))):
        pause.ended_at = now
    complaint.paused_since = None
    complaint.pause_reason = None


def merge_case(duplicate: Complaint, primary_number: str, reason: str, *, actor: StaffUser,
               expected_version: int | None = None) -> Complaint:
    """Merge ``duplicate`` into the case numbered ``primary_number`` of the same hospital; returns that case.

    The primary must still be answerable (not closed, declined, settled or itself merged): it answers for
    both. A case that others were merged into is kept as their primary, so it is not merged away itself.
    """
    check_version(duplicate, expected_version)
    check_writable(duplicate)
    reason = clean_text(reason, field="reason", label=gettext("合并理由"), limit=MAX_REASON,
                        required=gettext("请写明合并理由。"), error=CorrectionError)
    if not (primary_number or "").strip():
        raise CorrectionError(gettext("请填写要并入的案件编号。"), "primary")
    primary = find_case(duplicate.institution_id, primary_number)
    if primary is None:
        raise CorrectionError(gettext("本院没有编号为“%(number)s”的案件。", number=primary_number.strip()[:40]),
                              "primary")
    if primary.id == duplicate.id:
        raise CorrectionError(gettext("不能把案件并入它自己，请填写另一个案件的编号。"), "primary")
    if primary.merged_into_id is not None:
        target = db.session.get(Complaint, primary.merged_into_id)
        raise CorrectionError(gettext("案件 %(number)s 已并入 %(target)s，请填写 %(target)s。",
                                      number=primary.case_number, target=target.case_number if target else "—"),
                              "primary")
    if Status(primary.status) in Status.finished():
        raise CorrectionError(gettext("案件 %(number)s 已结束（%(status)s），不能再由它答复。如属重复投诉且无新情况，"
                                      "可对本案不予受理。", number=primary.case_number,
                                      status=Status(primary.status).label), "primary")
    joined = merged_cases(duplicate)
    if joined:
        raise CorrectionError(gettext("已有案件并入本案（%(numbers)s），本案不能再并入其他案件；可以把 %(number)s "
                                      "并入本案。", numbers=gettext("、").join(c.case_number for c in joined),
                                      number=primary.case_number), "primary")

    transition(duplicate, Action.MERGE, actor=actor,
               note=gettext("已并入 %(number)s：%(reason)s", number=primary.case_number, reason=reason),
               data={"case_id": primary.id, "case_number": primary.case_number})
    duplicate.merged_into_id = primary.id
    duplicate.closed_at = utcnow()  # finished: the retention period of its complainant's contact runs from here
    _end_pause(duplicate)
    log_event(primary, "merged_in", actor=actor,
              note=gettext("合并了 %(number)s：%(reason)s", number=duplicate.case_number, reason=reason),
              data={"case_id": duplicate.id, "case_number": duplicate.case_number})
    if duplicate.safety_emergency and not primary.safety_emergency:
        # The matter stays an emergency on the case that is handled; a notice already sent is not sent again.
        primary.safety_emergency = True
        primary.emergency_notified_at = duplicate.emergency_notified_at
        log_event(primary, "emergency", actor=actor,
                  note=gettext("随 %(number)s 并入", number=duplicate.case_number))
    touch(duplicate)
    touch(primary)
    record(actor, "complaint.merged_in", primary, {"duplicate": duplicate.id, "case_number": duplicate.case_number})
    return primary
