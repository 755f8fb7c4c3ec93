"""Replies to the complainant: drafted by the handler, approved by someone else, sent, recorded; then closing.

The rules this module keeps:

* 003 item 33: "明确投诉回复责任科室，并认真做好投诉回复工作" -- the lead department (or
  an officer) drafts; each draft is a new numbered version, never overwritten.
* Acceptance check C10: a reply is invisible to the complainant until a user
  *other than its drafter* approves it; only the approved text ever leaves the
  hospital.
* 000 II.11: "限时整改落实，结果及时回应当事人和社会公众" -- the approved reply goes out
  through the configured notifier (SMS, e-mail) or is printed as a letter, and
  the sending is recorded (Reply.sent_at / sent_via, Complaint.replied_at).
* Closing records whether the matter was resolved (解决率) and opens the
  one-question satisfaction link (complaints.feedback).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from complaints import feedback as feedback_service
from complaints.access import may_draft
from complaints.cohandling import check_ready_to_reply
from complaints.models import Channel, Complaint, Feedback, Reply, ReplyStatus, ReplyVia, Status
from complaints.workflow import (
    Action,
    NotAllowed,
    WorkflowError,
    check_version,
    log_event,
    text_complainant,
    touch,
    transition,
)
from core import notify
from core.audit import record
from core.clock import local_date
from core.db import utcnow
from core.extensions import db
from core.services import clean_text
from organisation.models import Institution, StaffUser

log = logging.getLogger(__name__)

MAX_BODY = 5000
MAX_NOTE = 2000
# A reply is drafted while the case is handled, and revised while the draft awaits review.
DRAFTING = frozenset({Status.IN_HANDLING, Status.REPLY_DRAFTED})


class ReplyError(WorkflowError):
    """A reply rule was broken; the message is for the user (``field`` names the form field, if any)."""


# Starting texts the drafter can pick. Kept as data so that an institution's own
# texts (a table and an editor) can replace them behind reply_templates() later.
# Placeholders: %(case_number)s, %(received)s, %(subject)s, %(institution)s (filled in by
# fill_template); what the drafter must write is left as a blank that unfilled_blanks() finds: an
# empty numbered item ("1. ") or a 【…】 naming what goes there.
@dataclass(frozen=True)
class ReplyTemplate:
    code: str
    title: Any
    body: Any


DEFAULT_REPLY_TEMPLATES: tuple[ReplyTemplate, ...] = (
    ReplyTemplate("confirmed", _l("情况属实，致歉并说明整改"), _l(
        "您好！您于%(received)s反映的“%(subject)s”（投诉编号 %(case_number)s）已收悉。经调查核实，您反映的情况属实，"
        "给您带来的不便，我们深表歉意。\n\n医院已责成相关科室：\n1. \n2. \n\n感谢您对我院工作的监督。"
        "如对处理结果有疑问，请联系%(institution)s患者服务中心。")),
    ReplyTemplate("explained", _l("调查后说明情况"), _l(
        "您好！您于%(received)s反映的“%(subject)s”（投诉编号 %(case_number)s）已收悉。医院高度重视，"
        "经调查核实，现将情况说明如下：\n【调查核实的情况】\n\n我们理解您的心情，也感谢您的意见。如您有新的情况或证据，"
        "可以通过回访链接或到%(institution)s患者服务中心反映，我们将重新予以处理。")),
    ReplyTemplate("charges", _l("收费问题（含退费）"), _l(
        "您好！您于%(received)s反映的收费问题（投诉编号 %(case_number)s）已收悉。经财务科与相关科室核对收费明细：\n\n"
        "经核实，【多收/误收】费用【金额】元，已按医院退费程序为您办理退费，款项将原路退回。\n\n"
        "给您带来的不便，我们深表歉意，并已要求相关科室加强收费核对。")),
    ReplyTemplate("attitude", _l("服务态度"), _l(
        "您好！您于%(received)s反映的服务态度问题（投诉编号 %(case_number)s）已收悉。医院已与当事工作人员谈话，"
        "当事人已认识到问题所在。我们已在科室内通报并加强服务规范培训，对给您带来的不愉快深表歉意。\n\n"
        "感谢您的监督，欢迎您继续对我们的工作提出意见。")),
)


def reply_templates(institution: Institution) -> list[ReplyTemplate]:
    """The starting texts offered to a drafter in ``institution`` (today the defaults)."""
    return list(DEFAULT_REPLY_TEMPLATES)


def fill_template(template: ReplyTemplate, complaint: Complaint, institution: Institution) -> str:
    """The template's text with the case's number, receipt date, subject and hospital filled in."""
    received = local_date(complaint.received_at)
    values = {"case_number": complaint.case_number, "subject": complaint.subject,
              "received": gettext("%(y)d年%(m)d月%(d)d日", y=received.year, m=received.month, d=received.day),
              "institution": institution.name}
    return str(template.body) % values


# Blanks a template leaves for the drafter: an empty numbered item ("1. ", "（2）", "三、", "④"), a 【…】 or
# [...] (empty or naming what goes there; the English texts use [...]), a run of underscores, a {…} or an
# unfilled %(name)s, and "××"/"XX".
_EMPTY_ITEM = re.compile(r"^[ \t\u3000]*(?:\d{1,2}[ \t]*[.．、)）]|[（(][ \t]*[0-9一二三四五六七八九十]{1,3}[ \t]*[)）]"
                         r"|[一二三四五六七八九十]{1,3}[ \t]*、|[\u2460-\u2473])[ \t\u3000]*$", re.MULTILINE)
_BLANKS = re.compile(r"【[^【】\n]{0,30}】|\[[^\[\]\n]{0,30}\]|_{3,}|＿{2,}|\{[^{}\n]{0,30}\}|%\(\w+\)[sd]"
                     r"|××+|(?<![A-Za-z])(?:XX|xx)+(?![A-Za-z])")
MAX_BLANKS_NAMED = 5


def unfilled_blanks(body: str) -> list[str]:
    """The blanks of a template still in ``body``, as the drafter will find them (empty items with their line)."""
    found = []
    for match in _EMPTY_ITEM.finditer(body or ""):
        line = body.count("\n", 0, match.start()) + 1
        found.append((match.start(), gettext("第 %(n)d 行“%(item)s”", n=line, item=match.group(0).strip())))
    found.extend((match.start(), f"“{match.group(0)}”") for match in _BLANKS.finditer(body or ""))
    return [text for _at, text in sorted(found)]


def _blanks_message(blanks: list[str]) -> str:
    named = gettext("、").join(blanks[:MAX_BLANKS_NAMED])
    if len(blanks) > MAX_BLANKS_NAMED:
        named = gettext("%(named)s等 %(n)d 处", named=named, n=len(blanks))
    return named


def check_filled(body: str) -> None:
    """A reply with a template's blanks left in (“1. 2.”, 【金额】) cannot go for approval, nor be approved."""
    blanks = unfilled_blanks(body)
    if blanks:
        raise ReplyError(gettext("答复中还有未填写的内容：%(blanks)s。请填写，或删去不需要的部分后再提交审核。",
                                 blanks=_blanks_message(blanks)), "body")


# Reading ----------------------------------------------------------------------------

def replies_for(complaint: Complaint) -> list[Reply]:
    """Every version of the case's reply, oldest first."""
    return list(db.session.scalars(select(Reply).where(Reply.complaint_id == complaint.id).order_by(Reply.number)))


def latest_reply(complaint: Complaint) -> Reply | None:
    return db.session.scalar(select(Reply).where(Reply.complaint_id == complaint.id)
                             .order_by(Reply.number.desc()).limit(1))


def visible_reply(complaint: Complaint) -> Reply | None:
    """The newest reply the complainant has been sent: approved by a second person first (check C10)."""
    return db.session.scalar(select(Reply).where(Reply.complaint_id == complaint.id,
                                                 Reply.status == ReplyStatus.SENT)
                             .order_by(Reply.number.desc()).limit(1))


def _complaint(reply: Reply) -> Complaint:
    return db.session.get_one(Complaint, reply.complaint_id)


# Who may do what ----------------------------------------------------------------------

def can_start_draft(user: StaffUser, complaint: Complaint) -> bool:
    return (complaint.merged_into_id is None and Status(complaint.status) in DRAFTING
            and may_draft(user, complaint))


def check_writable(complaint: Complaint) -> None:
    """A case merged into another is kept read-only (check C12)."""
    if complaint.merged_into_id is not None:
        raise NotAllowed(gettext("该案件已合并，只能查看。"))


# Drafting and review -------------------------------------------------------------------

def draft_reply(complaint: Complaint, body: str, *, actor: StaffUser, expected_version: int | None = None) -> Reply:
    """The lead department's handler or an officer submits the next version of the reply for review."""
    body = clean_text(body, field="body", label=gettext("答复内容"), limit=MAX_BODY,
                      required=gettext("请填写答复内容。"), error=ReplyError)
    check_filled(body)
    check_writable(complaint)
    status = Status(complaint.status)
    if status not in DRAFTING:
        raise NotAllowed(gettext("案件当前状态为“%(status)s”，不能起草答复。", status=status.label))
    if not may_draft(actor, complaint):
        raise NotAllowed(gettext("只有主办科室的处理人或投诉管理人员可以起草答复。"))
    check_version(complaint, expected_version)
    if status == Status.IN_HANDLING:
        check_ready_to_reply(complaint)
    number = (db.session.scalar(select(func.max(Reply.number)).where(Reply.complaint_id == complaint.id)) or 0) + 1
    reply = Reply(complaint_id=complaint.id, number=number, body=body, status=ReplyStatus.SUBMITTED,
                  drafted_by_id=actor.id, drafted_at=utcnow(), review_note="", sent_via="")
    db.session.add(reply)
    if status == Status.IN_HANDLING:
        transition(complaint, Action.DRAFT_REPLY, actor=actor, data={"reply": number})
    else:
        # A new version while the previous one waits for review: that one can no longer be approved.
        log_event(complaint, "reply_revised", actor=actor, data={"reply": number},
                  note=gettext("提交了答复第 %(n)d 版，替换待审核的上一版。", n=number))
        touch(complaint)
    record(actor, "complaint.reply.draft", complaint, {"reply": number, "length": len(body)})
    return reply


def _pending(reply: Reply, complaint: Complaint) -> None:
    check_writable(complaint)
    if reply.status != ReplyStatus.SUBMITTED:
        raise ReplyError(gettext("该版本答复不在待审核状态。"))
    latest = latest_reply(complaint)
    if latest is not None and latest.id != reply.id:
        raise ReplyError(gettext("已有更新的答复版本（第 %(n)d 版），请审核最新版本。", n=latest.number))


def return_reply(reply: Reply, note: str, *, actor: StaffUser, expected_version: int | None = None) -> Reply:
    """An officer sends a draft back for rework, saying what to change (the note is required)."""
    note = clean_text(note, field="note", label=gettext("退回意见"), limit=MAX_NOTE,
                      required=gettext("请填写退回意见。"), error=ReplyError)
    complaint = _complaint(reply)
    _pending(reply, complaint)
    transition(complaint, Action.RETURN_REPLY, actor=actor, expected_version=expected_version, note=note,
               data={"reply": reply.number})
    reply.status = ReplyStatus.RETURNED
    reply.reviewed_by_id = actor.id
    reply.reviewed_at = utcnow()
    reply.review_note = note
    record(actor, "complaint.reply.return", complaint, {"reply": reply.number})
    return reply


def approve_reply(reply: Reply, *, actor: StaffUser, expected_version: int | None = None) -> Reply:
    """An officer other than the drafter approves the reply (check C10); only then may it reach the patient."""
    complaint = _complaint(reply)
    _pending(reply, complaint)
    if reply.drafted_by_id == actor.id:
        raise NotAllowed(gettext("答复须由起草人以外的人员审核，您不能审核自己起草的答复。"))
    blanks = unfilled_blanks(reply.body)
    if blanks:  # drafted before the rule: it goes back to its drafter, never to the complainant
        raise ReplyError(gettext("答复中还有未填写的内容：%(blanks)s。请退回起草人补充后再审核。",
                                 blanks=_blanks_message(blanks)))
    transition(complaint, Action.APPROVE_REPLY, actor=actor, expected_version=expected_version,
               data={"reply": reply.number})
    reply.status = ReplyStatus.APPROVED
    reply.reviewed_by_id = actor.id
    reply.reviewed_at = utcnow()
    record(actor, "complaint.reply.approve", complaint, {"reply": reply.number, "drafted_by": reply.drafted_by_id})
    return reply


# Sending ----------------------------------------------------------------------------------

def available_vias(complaint: Complaint) -> list[ReplyVia]:
    """How this complainant can be answered: SMS needs a phone; a letter is always possible."""
    vias = []
    if complaint.complainant_phone:
        vias.append(ReplyVia.SMS)
    if complaint.channel == Channel.EMAIL:
        vias.append(ReplyVia.EMAIL)
    vias.append(ReplyVia.LETTER)
    return vias


def default_via(complaint: Complaint) -> ReplyVia:
    """Answer the way the complaint came in: e-mail for e-mail, a letter for walk-ins and letters, else SMS."""
    if complaint.channel == Channel.EMAIL:
        return ReplyVia.EMAIL
    if complaint.channel in (Channel.WALK_IN, Channel.LETTER) or not complaint.complainant_phone:
        return ReplyVia.LETTER
    return ReplyVia.SMS


def send_reply(complaint: Complaint, *, actor: StaffUser, via: str | None = None, email: str | None = None,
               expected_version: int | None = None) -> Reply:
    """An officer sends the approved reply (SMS, e-mail, or a printed letter) and the sending is recorded."""
    check_writable(complaint)
    reply = latest_reply(complaint)
    if reply is None or reply.status != ReplyStatus.APPROVED:
        raise ReplyError(gettext("没有已审核的答复可以发送。"))
    try:
        chosen = ReplyVia(via) if via else default_via(complaint)
    except ValueError:
        raise ReplyError(gettext("请选择答复方式。"), "via") from None
    if chosen not in available_vias(complaint):
        raise ReplyError(gettext("投诉人未留手机号，不能发送短信答复。") if chosen == ReplyVia.SMS
                         else gettext("无法使用该答复方式。"), "via")
    address = ""
    if chosen == ReplyVia.EMAIL:
        address = (email or "").strip()
        if "@" not in address or len(address) > 254 or any(ch.isspace() for ch in address):
            raise ReplyError(gettext("请填写有效的电子邮件地址。"), "email")
    # Without a gateway (core.notify.delivers) a text or e-mail only reaches the log: the reply is recorded
    # as answered that way, and the timeline says it did not leave, so someone phones or posts it.
    data: dict[str, Any] = {"reply": reply.number, "via": chosen.value}
    note = ""
    if chosen != ReplyVia.LETTER and not notify.delivers(chosen.value):
        data["delivered"] = False
        note = (gettext("系统未配置短信网关，短信没有发出：请电话告知投诉人或寄送书面答复。") if chosen == ReplyVia.SMS
                else gettext("系统未配置邮件网关，电子邮件没有发出：请寄送书面答复或另行发送。"))
    transition(complaint, Action.SEND_REPLY, actor=actor, expected_version=expected_version, note=note, data=data)
    with force_locale("zh_Hans"):
        subject = gettext("投诉处理答复（编号 %(n)s）", n=complaint.case_number)
    kind = "complaint_reply"
    if chosen != ReplyVia.LETTER:  # the printed letter is handed over or posted by the officer
        try:
            if chosen == ReplyVia.SMS:
                if not text_complainant(complaint, subject, f"{subject}：{reply.body}", kind=kind,
                                        meta={"reply": reply.number}):
                    raise ValueError("no phone number to text")
            else:
                institution = db.session.get_one(Institution, complaint.institution_id)
                notify.send_to_person(address, f"{institution.name} {subject}", reply.body, kind=kind,
                                      channel="email", meta={"complaint_id": complaint.id, "reply": reply.number})
        except Exception:
            log.exception("reply for complaint %s could not be sent via %s", complaint.id, chosen.value)
            raise ReplyError(gettext("答复发送失败，请稍后重试或改用书面答复。")) from None
    now = utcnow()
    reply.status = ReplyStatus.SENT
    reply.sent_at = now
    reply.sent_via = chosen.value
    complaint.replied_at = now
    if complaint.first_response_at is None:
        complaint.first_response_at = now
    record(actor, "complaint.reply.send", complaint, data)
    return reply


# Closing ----------------------------------------------------------------------------------

def close_complaint(complaint: Complaint, resolved: bool, note: str, *, actor: StaffUser,
                    expected_version: int | None = None, now: datetime | None = None) -> Feedback:
    """An officer closes a replied case, judging whether it was resolved; a satisfaction link is opened.

    A case closed as not resolved needs a note saying why. Returns the new
    Feedback; the view queues complaints.feedback.send_feedback_link after its commit.
    """
    check_writable(complaint)
    note = clean_text(note, field="note", label=gettext("办结说明"), limit=MAX_NOTE, error=ReplyError,
                      required=None if resolved else gettext("未解决的案件办结时，请写明情况说明。"))
    transition(complaint, Action.CLOSE, actor=actor, expected_version=expected_version, note=note,
               data={"resolved": bool(resolved)})
    complaint.closed_at = now or utcnow()
    complaint.resolved = bool(resolved)
    feedback = feedback_service.open_feedback(complaint, actor=actor, now=complaint.closed_at)
    record(actor, "complaint.close.outcome", complaint, {"resolved": bool(resolved), "feedback": feedback.id})
    return feedback
