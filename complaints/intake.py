"""Intake: one front desk for complaints from every channel (投诉一口受理, 首诉负责).

Seed 003 item 33: "投诉一口受理 … 明确一个科室受理医德医风、医疗质量安全、安全保卫和其他投诉，
负责受理投诉的科室根据投诉内容分配至相关科室处理". Seed 004 item 5/15: "一体化患者投诉服务中心，
对患者投诉做到首接负责 … 健全并落实患者投诉、接待、受理、处理、反馈制度".

Whoever receives a complaint registers it here, whatever the channel: the
patient's own form (QR code, web, the survey thank-you page), a walk-in, a
call, a letter, an e-mail, a 12345 hotline work order, or a survey alert.
Every case gets a readable number per institution and year, a six-digit
lookup code for the complainant (stored only as a keyed hash), a timeline
entry and an audit entry. Neither the timeline nor the audit trail carries
the complainant's name or phone number.
"""
from __future__ import annotations

import hmac
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from complaints.categories import categories_for, category_label
from complaints.models import Attachment, CaseCounter, Category, Channel, Complaint, Relation, Status
from complaints.settings import complaint_settings
from complaints.workflow import log_event
from core import notify
from core.audit import record
from core.clock import local_date
from core.db import utcnow
from core.extensions import db
from core.phone import InvalidPhone, normalise_phone
from core.public import new_submission_id, valid_submission_id
from core.services import ServiceError, clean_text
from core.signing import hash_value
from organisation.models import Department, Institution, Role, StaffUser, Touchpoint
from organisation.services import staff_with_roles
from survey import alerts

STAFF_CHANNELS = (Channel.WALK_IN, Channel.PHONE, Channel.LETTER, Channel.EMAIL, Channel.HOTLINE_12345)

MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
# Received times a little in the future are clock skew between the officer's PC and the server.
FUTURE_SKEW = timedelta(minutes=10)
EARLIEST_RECEIPT = timedelta(days=366)


class IntakeError(ServiceError):
    """A complaint cannot be registered as given; the message (and field) go back to the form."""


# Numbers, codes and masks -----------------------------------------------------------

def next_case_number(institution: Institution, received_at: datetime) -> str:
    """The next readable case number, e.g. "TS2026-00042": prefix, Beijing-time year, a yearly per-institution sequence.

    The per-institution counter row is updated in place, so its row lock
    serialises two registrations at once until the first commits; the
    first registration of a year inserts the row, and a twin insert retries.
    """
    year = local_date(received_at).year
    prefix = complaint_settings(institution.id).case_prefix or "TS"
    for _attempt in range(3):
        number = db.session.execute(
            update(CaseCounter)
            .where(CaseCounter.institution_id == institution.id, CaseCounter.year == year)
            .values(last_number=CaseCounter.last_number + 1)
            .returning(CaseCounter.last_number)
            .execution_options(synchronize_session=False)
        ).scalar()
        if number is not None:
            break
        try:
            with db.session.begin_nested():
                db.session.add(CaseCounter(institution_id=institution.id, year=year, last_number=1))
            number = 1
            break
        except IntegrityError:
            continue  # another registration created the year's row first: take the next number from it
    else:  # pragma: no cover - three collisions in a row
        raise IntakeError(gettext("登记繁忙，请重试。"))
    return f"{prefix}{year}-{number:05d}"


def lookup_code_for(institution_id: int, submission_id: str) -> str:
    """The six-digit lookup code of a submission: derived with the app's key, so a retry shows the same code."""

    return f"{int(hash_value('complaint-lookup-code', f'{institution_id}:{submission_id}'), 16) % 1_000_000:06d}"


def hash_lookup_code(institution_id: int, case_number: str, code: str) -> str:

    return hash_value("complaint-lookup", f"{institution_id}:{case_number}:{code}")


def check_lookup_code(complaint: Complaint, code: str) -> bool:
    expected = hash_lookup_code(complaint.institution_id, complaint.case_number, code)
    return bool(complaint.lookup_code_hash) and hmac.compare_digest(expected, complaint.lookup_code_hash)


def _submission_hash(institution_id: int, submission_id: str) -> str:

    return hash_value("complaint-submission", f"{institution_id}:{submission_id}")


def find_submission(institution: Institution, submission_id: str) -> Complaint | None:
    """The case a client submission id already created, if any."""
    if not submission_id:
        return None
    return db.session.scalar(select(Complaint).where(
        Complaint.institution_id == institution.id,
        Complaint.submission_hash == _submission_hash(institution.id, submission_id)))


def reissue_lookup_code(complaint: Complaint, *, actor: Any) -> str:
    """Give the complainant a new lookup code (the old one stops working); returns it to be told once."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    complaint.lookup_code_hash = hash_lookup_code(complaint.institution_id, complaint.case_number, code)
    log_event(complaint, "lookup_code_reissued", actor=actor)
    db.session.flush()
    record(actor, "complaint.reissue_lookup_code", complaint)
    return code


def clean_complainant_phone(phone: str | None) -> str | None:
    """The complainant's number as stored (core.phone's rule; a local landline is accepted); None if empty."""
    try:
        return normalise_phone(phone, local=True)
    except InvalidPhone as exc:
        raise IntakeError(str(exc), "complainant_phone") from None


# Attachments ----------------------------------------------------------------------

@dataclass
class Upload:
    """A file as received, before it is checked."""

    filename: str
    data: bytes
    declared_type: str = ""


KINDS = {  # sniffed kind → (content type, extensions accepted for it)
    "jpg": ("image/jpeg", {".jpg", ".jpeg", ".jfif"}),
    "png": ("image/png", {".png"}),
    "pdf": ("application/pdf", {".pdf"}),
    "heic": ("image/heic", {".heic", ".heif"}),
}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def sniff(data: bytes) -> str | None:
    """The file's real kind from its first bytes (the browser's content type is not trusted)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "heic"
    return None


def _safe_filename(name: str, kind: str) -> str:
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?').strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot or f".{ext.lower()}" not in KINDS[kind][1]:
        stem, ext = (name or "file"), kind
    stem = stem[: 120 - len(ext) - 1] or "file"
    return f"{stem}.{ext}"


def check_attachments(uploads: Sequence[Upload]) -> list[tuple[str, str, bytes]]:
    """At most 5 files of at most 5 MB each, JPG, PNG, PDF or HEIC (checked by content); returns (name, type, data)."""
    uploads = [u for u in uploads if u.filename or u.data]
    if len(uploads) > MAX_ATTACHMENTS:
        raise IntakeError(gettext("最多上传 %(n)d 个文件，您选择了 %(m)d 个。", n=MAX_ATTACHMENTS, m=len(uploads)),
                          "attachments")
    checked = []
    for upload in uploads:
        label = upload.filename or gettext("未命名文件")
        if not upload.data:
            raise IntakeError(gettext("文件“%(name)s”是空的，请重新选择。", name=label), "attachments")
        if len(upload.data) > MAX_ATTACHMENT_BYTES:
            raise IntakeError(gettext("文件“%(name)s”超过 5 MB，请压缩或拍摄较小的照片后再上传。", name=label),
                              "attachments")
        kind = sniff(upload.data)
        if kind is None:
            raise IntakeError(gettext("文件“%(name)s”格式不支持，只能上传 JPG、PNG、HEIC 照片或 PDF 文件。",
                                      name=label), "attachments")
        checked.append((_safe_filename(upload.filename, kind), KINDS[kind][0], upload.data))
    return checked


# Registration ---------------------------------------------------------------------

def _clean_text(value: str | None, field: str, limit: int, *, required: bool = False, label: str = "") -> str:
    return clean_text(value, field=field, label=label, limit=limit, error=IntakeError,
                      required=gettext("请填写%(what)s。", what=label) if required else None)


def derive_subject(description: str, category: Category | None = None) -> str:
    """A subject for a form that did not ask for one: the first line of the description, shortened."""
    first = (description or "").strip().split("\n", 1)[0].strip()
    if len(first) > 30:
        first = first[:30] + "…"
    return first or category_label(category)


def _check_category(institution: Institution, category: Category | None) -> Category:
    if category is None:
        raise IntakeError(gettext("请选择投诉类别。"), "category")
    if category.institution_id not in (None, institution.id) or not category.active:
        raise IntakeError(gettext("所选投诉类别不可用，请重新选择。"), "category")
    return category


def _check_received(received_at: datetime) -> datetime:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    now = utcnow()
    if received_at > now + FUTURE_SKEW:
        raise IntakeError(gettext("接到投诉的时间不能晚于现在。"), "received_at")
    if received_at < now - EARLIEST_RECEIPT:
        raise IntakeError(gettext("接到投诉的时间不能早于一年前。"), "received_at")
    return received_at


def register_complaint(institution: Institution, *, channel: Channel | str, received_at: datetime, subject: str,
                       description: str, wish: str, category: Category | None, touchpoint: Touchpoint | None = None,
                       departments_concerned: Iterable[Department] = (), staff_involved: str = "",
                       complainant_name: str | None = None, complainant_phone: str | None = None,
                       relation: Relation | str = Relation.SELF, channel_ref: str = "",
                       first_contact: StaffUser | None = None,
                       rating: alerts.RatingLink | None = None, attachments: Sequence[Upload] = (),
                       submission_id: str | None = None, safety_emergency: bool = False,
                       actor: Any) -> tuple[Complaint, str]:
    """Register a complaint from any channel (首诉负责: ``first_contact`` is responsible); returns (case, lookup code).

    A repeated ``submission_id`` (a double tap, a retry on a bad network)
    returns the case it first created, with the same code. A category flagged
    as quality-and-safety, or ``safety_emergency``, flags the case as an
    emergency: the caller queues its notice after the commit (flag_emergency).
    """
    channel = Channel(channel)
    submission_id = submission_id or new_submission_id()
    if not valid_submission_id(submission_id):
        raise IntakeError(gettext("提交编号无效，请刷新页面后重新填写。"))
    existing = find_submission(institution, submission_id)
    if existing is not None:
        return existing, lookup_code_for(institution.id, submission_id)

    category = _check_category(institution, category)
    received_at = _check_received(received_at)
    description = _clean_text(description, "description", 4000, required=True, label=gettext("投诉内容"))
    subject = _clean_text(subject, "subject", 120, label=gettext("事由")) or derive_subject(description, category)
    wish = _clean_text(wish, "wish", 2000, label=gettext("诉求"))
    staff_involved = _clean_text(staff_involved, "staff_involved", 200, label=gettext("涉及人员"))
    channel_ref = _clean_text(channel_ref, "channel_ref", 60, label=gettext("来源编号"))
    if channel == Channel.HOTLINE_12345 and not channel_ref:
        raise IntakeError(gettext("12345 热线转办须填写工单编号。"), "channel_ref")
    name = _clean_text(complainant_name, "complainant_name", 40, label=gettext("姓名")) or None
    phone = clean_complainant_phone(complainant_phone)
    if not Relation.is_value(relation):
        raise IntakeError(gettext("请选择与患者的关系。"), "relation")
    if touchpoint is not None and touchpoint.institution_id != institution.id:
        raise IntakeError(gettext("所选服务点不属于本院。"), "touchpoint")
    departments = list(dict.fromkeys(departments_concerned))
    if any(d.institution_id != institution.id for d in departments):
        raise IntakeError(gettext("所选科室不属于本院。"), "departments")
    if rating is not None and rating.institution_id != institution.id:
        raise IntakeError(gettext("关联的满意度评价不属于本院。"))
    files = check_attachments(attachments)
    if touchpoint is not None and not departments and touchpoint.department is not None:
        departments = [touchpoint.department]

    try:
        with db.session.begin_nested():
            case_number = next_case_number(institution, received_at)
            code = lookup_code_for(institution.id, submission_id)
            complaint = Complaint(
                institution_id=institution.id, case_number=case_number, channel=channel.value,
                channel_ref=channel_ref, received_at=received_at,
                first_contact_id=first_contact.id if first_contact is not None else None,
                category_id=category.id, touchpoint_id=touchpoint.id if touchpoint is not None else None,
                survey_response_id=rating.response_id if rating is not None else None,
                submission_hash=_submission_hash(institution.id, submission_id),
                lookup_code_hash=hash_lookup_code(institution.id, case_number, code),
                subject=subject, description=description, wish=wish, staff_involved=staff_involved,
                complainant_name=name, complainant_phone=phone, complainant_relation=relation,
                safety_emergency=False)
            complaint.concerned_departments = departments
            db.session.add(complaint)
            db.session.flush()
    except IntegrityError:
        # A twin of this submission committed while this one waited for the case number.
        existing = find_submission(institution, submission_id)
        if existing is None:
            raise
        return existing, lookup_code_for(institution.id, submission_id)

    uploader = getattr(actor, "id", None) if isinstance(actor, StaffUser) else None
    for filename, content_type, data in files:
        db.session.add(Attachment(complaint_id=complaint.id, filename=filename, content_type=content_type,
                                  size=len(data), data=data, uploaded_by_id=uploader))
    log_event(complaint, "registered", actor=actor,
              data={"channel": channel.value, "category": category.code, "attachments": len(files),
                    **({"survey_response_id": rating.response_id} if rating is not None else {}),
                    **({"first_contact_id": first_contact.id} if first_contact is not None else {})})
    db.session.flush()
    record(actor, "complaint.register", complaint,
           {"channel": channel.value, "category": category.code, "attachments": len(files),
            "departments": [d.id for d in departments], "has_contact": bool(name or phone)})
    if category.safety or safety_emergency:
        flag_emergency(complaint, actor=actor)
    return complaint, code


# Quality-and-safety emergencies ---------------------------------------------------------

def emergency_recipients(institution_id: int) -> list[StaffUser]:
    """Who is alerted at once: the institution's complaint officers, admins and leadership."""
    return staff_with_roles(institution_id, Role.COMPLAINT_OFFICER, Role.INSTITUTION_ADMIN, Role.LEADERSHIP)


def flag_emergency(complaint: Complaint, *, actor: Any, note: str = "") -> bool:
    """Mark a case as a quality-and-safety emergency whose officers, admins and leadership are to be alerted now.

    "涉及医疗质量安全、可能危及患者健康的，应当立即采取积极措施" (医疗机构投诉管理办法). The
    notice is not sent here: at registration this runs under the lock of the
    case-number counter, and a slow SMS gateway would hold up every other
    registration at the hospital. The caller commits, then queues
    ``complaints.tasks.notify_emergency`` on the high queue; a minutely sweep
    sends any notice still owed. Returns False if the case was already flagged.
    """
    if complaint.safety_emergency:
        return False
    if Status(complaint.status) in Status.finished():
        # A finished case is reopened first; an alarm about it would send people to nothing.
        raise IntakeError(gettext("案件已结束，请先重新处理后再标记紧急。"))
    complaint.safety_emergency = True
    log_event(complaint, "emergency", actor=actor, note=(note or "")[:500])
    db.session.flush()
    record(actor, "complaint.flag_emergency", complaint)
    return True


def emergency_message(complaint: Complaint) -> notify.Message:
    """The emergency notice of a case, to its institution's officers, admins and leadership."""
    recipients = [u.username for u in emergency_recipients(complaint.institution_id)]
    category = db.session.get(Category, complaint.category_id) if complaint.category_id else None
    place = complaint.touchpoint.name if complaint.touchpoint is not None else ""
    departments = "、".join(d.name for d in complaint.concerned_departments)
    # No complainant name, phone or description: the message may travel by SMS or e-mail.
    body = gettext("案件 %(number)s（%(category)s）涉及医疗质量安全，可能危及患者健康，请立即处理。",
                   number=complaint.case_number, category=category_label(category))
    where = "；".join(filter(None, [place, departments]))
    if where:
        body += " " + gettext("涉及：%(where)s。", where=where)
    return notify.Message(recipients=recipients, kind="complaint_emergency",
                          subject=gettext("【紧急】医疗质量安全投诉 %(number)s", number=complaint.case_number),
                          body=body,
                          link=notify.link("complaints_staff.case", institution_id=complaint.institution_id,
                                           case_id=complaint.id),
                          meta={"complaint_id": complaint.id, "institution_id": complaint.institution_id},
                          key=f"complaint:{complaint.id}:emergency")


# Survey alerts (through survey's public alert API) -----------------------------------------

def alert_submission_id(alert_id: int) -> str:
    return f"survey-alert-{alert_id:08d}"


def complaint_for_alert(institution: Institution, alert_id: int) -> Complaint | None:
    """The case an alert became, if it became one."""
    return find_submission(institution, alert_submission_id(alert_id))


def complaint_from_alert(institution: Institution, alert_id: int, *, actor: StaffUser,
                         category: Category | None = None) -> tuple[Complaint, str]:
    """Turn a service-recovery alert into a complaint (once per alert); the converting officer is first contact."""
    alert = alerts.alert_for_complaint(institution.id, alert_id)
    if alert is None:
        raise IntakeError(gettext("该提醒不存在。"))
    if category is None:
        category = next((c for c in categories_for(institution) if c.institution_id is None and c.code == "other"),
                        None)
    touchpoint = db.session.get(Touchpoint, alert.touchpoint_id) if alert.touchpoint_id else None
    department = db.session.get(Department, alert.department_id) if alert.department_id else None
    if alert.comment:
        description = alert.comment
    elif alert.low_score:
        description = gettext("患者在满意度评价中给出低分（%(reasons)s），未填写具体意见。", reasons=alert.reason_text)
    else:  # raised for a flagged answer or a wish to be contacted, not for the score
        description = gettext("患者的满意度评价触发了服务提醒（%(reasons)s），未填写具体意见。",
                              reasons=alert.reason_text)
    complaint, code = register_complaint(
        institution, channel=Channel.SURVEY_ALERT, received_at=utcnow(),
        subject=(gettext("满意度评价转投诉：%(place)s", place=alert.place) if alert.place
                 else gettext("满意度评价转投诉")),
        description=description, wish="", category=category, touchpoint=touchpoint,
        departments_concerned=[department] if department is not None else [],
        complainant_phone=alert.contact_phone, first_contact=actor,
        rating=alert.rating,
        submission_id=alert_submission_id(alert.id), actor=actor)
    if alert.open:
        alerts.acknowledge_for_complaint(alert.id, actor=actor)
    return complaint, code
