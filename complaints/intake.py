"""Intake: one front desk for complaints from every channel (投诉一口受理, 首诉负责).

Seed 003 item 33: "投诉一口受理 … 明确一个科室受理医德医风、医疗质量安全、安全保卫和其他投诉，
负责受理投诉的科室根据投诉内容分配至相关科室处理". Seed 004 item 5/15: "一体化患者投诉服务中心，
对患者投诉做到首接负责 … 健全并落实患者投诉、接待、受理、处理、反馈制度".

Whoever receives a complaint registers it here, whatever the channel: the
patient's own form (QR code, web, the survey thank-you page), a walk-in, a
call, a letter, an e-mail, a 12345 hotline work order, or a survey alert.
Every case gets a readable number per institution and year, a six-digit
lookup code for the complainant (stored only as a keyed hash), its answer
deadline counted from the day of receipt, a timeline entry and an audit
entry. Neither the timeline nor the audit trail carries the complainant's
name or phone number.
"""
from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from complaints.attachments import (
    MAX_ATTACHMENTS,
    Prepared,
    Upload,
    pending_files,
    prepare_all,
    take_pending,
    too_many,
)
from complaints.categories import categories_for
from complaints.deadlines import start_clock
from complaints.emergency import flag_emergency, report_safety
from complaints.models import Attachment, CaseCounter, Category, Channel, Complaint, Relation
from complaints.settings import complaint_settings
from complaints.subjects import derive_subject
from complaints.workflow import log_event
from core.audit import record
from core.clock import local_date
from core.db import utcnow
from core.extensions import db
from core.phone import InvalidPhone, normalise_phone
from core.public import new_submission_id, valid_submission_id
from core.services import ServiceError, clean_text
from core.signing import hash_value
from organisation.models import Department, Institution, StaffUser, Touchpoint
from survey import alerts

STAFF_CHANNELS = (Channel.WALK_IN, Channel.PHONE, Channel.LETTER, Channel.EMAIL, Channel.HOTLINE_12345)
# The most characters each text of a complaint may have (line breaks count one, outer blanks none); the
# forms state them in their labels and count them as people type.
LIMITS = {"description": 4000, "wish": 2000, "subject": 120, "staff_involved": 200, "channel_ref": 60,
          "complainant_name": 40}

# A complainant's form stays submittable this long: an elderly patient may take a long time, or come back
# to the tab later. Its files are kept as long (complaints.attachments.PENDING_SECONDS).
FORM_TOKEN_MAX_AGE = 24 * 3600
# Received times a little in the future are clock skew between the officer's PC and the server.
FUTURE_SKEW = timedelta(minutes=10)
EARLIEST_RECEIPT = timedelta(days=366)


class IntakeError(ServiceError):
    """A complaint cannot be registered as given; the message (and field) go back to the form.

    ``problems`` lists every (field, message) a registration's checks refused, so that a form can show
    all its mistakes at once; ``field`` and the message are the first of them.
    """

    def __init__(self, message: str, field: str | None = None, *,
                 problems: Sequence[tuple[str | None, str]] = ()):
        super().__init__(message, field)
        self.problems: list[tuple[str | None, str]] = list(problems) or [(field, message)]


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


# Registration ---------------------------------------------------------------------

class _Refusals:
    """Runs every check of a registration and collects what each refuses, so a form shows all its mistakes."""

    def __init__(self) -> None:
        self.problems: list[tuple[str | None, str]] = []

    def add(self, error: ServiceError) -> None:
        self.problems.extend(getattr(error, "problems", None) or [(error.field, str(error))])

    def check(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ServiceError as exc:
            self.add(exc)
            return None

    def raise_any(self) -> None:
        if self.problems:
            field, message = self.problems[0]
            raise IntakeError(message, field, problems=self.problems)


def _clean_text(value: str | None, field: str, *, required: bool = False, label: str = "") -> str:
    return clean_text(value, field=field, label=label, limit=LIMITS[field], error=IntakeError,
                      required=gettext("请填写%(what)s。", what=label) if required else None)


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


def _check_relation(relation: Relation | str) -> Relation | str:
    if not Relation.is_value(relation):
        raise IntakeError(gettext("请选择与患者的关系。"), "relation")
    return relation


def _check_places(institution: Institution, touchpoint: Touchpoint | None,
                  departments: list[Department]) -> None:
    if touchpoint is not None and touchpoint.institution_id != institution.id:
        raise IntakeError(gettext("所选服务点不属于本院。"), "touchpoint")
    if any(d.institution_id != institution.id for d in departments):
        raise IntakeError(gettext("所选科室不属于本院。"), "departments")


@dataclass
class Checked:
    """A registration's input, checked and cleaned: what register_complaint stores."""

    category: Category
    received_at: datetime | None
    subject: str
    description: str
    wish: str
    staff_involved: str
    channel_ref: str
    name: str | None
    phone: str | None
    relation: Relation | str
    departments: list[Department]
    files: list[Prepared]


def check_complaint(institution: Institution, *, channel: Channel | str, received_at: datetime | None,
                    subject: str, description: str, wish: str, category: Category | None,
                    touchpoint: Touchpoint | None = None, departments_concerned: Iterable[Department] = (),
                    staff_involved: str = "", complainant_name: str | None = None,
                    complainant_phone: str | None = None, relation: Relation | str = Relation.SELF,
                    channel_ref: str = "", rating: alerts.RatingLink | None = None,
                    attachments: Sequence[Upload | Prepared] = (), kept_files: int = 0) -> Checked:
    """Check everything a registration needs and raise one IntakeError listing **every** problem (``problems``).

    The forms call it on their own when their fields already failed (``received_at`` None: the form
    reported it), so that a person sees every mistake after one submit, not one per submit.
    ``kept_files`` counts the files already kept for the form (complaints.attachments).
    """
    refusals = _Refusals()
    channel = Channel(channel)
    checked_category = refusals.check(_check_category, institution, category)
    if received_at is not None:
        refusals.check(_check_received, received_at)
    description = refusals.check(_clean_text, description, "description", required=True,
                                 label=gettext("投诉内容")) or ""
    subject = refusals.check(_clean_text, subject, "subject", label=gettext("事由")) or ""
    wish = refusals.check(_clean_text, wish, "wish", label=gettext("诉求")) or ""
    staff_involved = refusals.check(_clean_text, staff_involved, "staff_involved", label=gettext("涉及人员")) or ""
    channel_ref = refusals.check(_clean_text, channel_ref, "channel_ref", label=gettext("来源编号")) or ""
    if channel == Channel.HOTLINE_12345 and not channel_ref:
        refusals.add(IntakeError(gettext("12345 热线转办须填写工单编号。"), "channel_ref"))
    name = refusals.check(_clean_text, complainant_name, "complainant_name", label=gettext("姓名")) or None
    phone = refusals.check(clean_complainant_phone, complainant_phone)
    refusals.check(_check_relation, relation)
    departments = list(dict.fromkeys(departments_concerned))
    refusals.check(_check_places, institution, touchpoint, departments)
    if rating is not None and rating.institution_id != institution.id:
        refusals.add(IntakeError(gettext("关联的满意度评价不属于本院。")))
    chosen = [u for u in attachments if not isinstance(u, Upload) or u.filename or u.data]
    files, refused = prepare_all(chosen)
    for error in refused:
        refusals.add(error)
    if kept_files + len(chosen) > MAX_ATTACHMENTS:
        refusals.add(too_many(kept_files + len(chosen)))
    refusals.raise_any()
    assert checked_category is not None  # raise_any raised otherwise
    if touchpoint is not None and not departments and touchpoint.department is not None:
        departments = [touchpoint.department]
    return Checked(category=checked_category, received_at=received_at,
                   subject=subject or derive_subject(description, checked_category), description=description,
                   wish=wish, staff_involved=staff_involved, channel_ref=channel_ref, name=name, phone=phone,
                   relation=relation, departments=departments, files=files)


def register_complaint(institution: Institution, *, channel: Channel | str, received_at: datetime, subject: str,
                       description: str, wish: str, category: Category | None, touchpoint: Touchpoint | None = None,
                       departments_concerned: Iterable[Department] = (), staff_involved: str = "",
                       complainant_name: str | None = None, complainant_phone: str | None = None,
                       relation: Relation | str = Relation.SELF, channel_ref: str = "",
                       first_contact: StaffUser | None = None,
                       rating: alerts.RatingLink | None = None, attachments: Sequence[Upload | Prepared] = (),
                       submission_id: str | None = None, safety_emergency: bool = False,
                       actor: Any) -> tuple[Complaint, str]:
    """Register a complaint from any channel (首诉负责: ``first_contact`` is responsible); returns (case, lookup code).

    A repeated ``submission_id`` (a double tap, a retry on a bad network)
    returns the case it first created, with the same code. The files kept
    for that submission id (complaints.attachments) are attached with the new
    ones. Every refusal is raised at once (IntakeError.problems).

    Quality and safety: ``safety_emergency`` (the officer's tick) flags the
    case as an emergency whose notice pages leadership — the caller queues it
    after the commit (flag_emergency). A complaint the complainant filed
    themselves (no ``first_contact``) in a quality-and-safety category is a
    **safety report** instead: the officers on duty are told to check it
    (complaints.tasks.notify_safety_reports, grouped), and only their flag
    pages leadership. An officer who registers one decides with the tick.
    """
    channel = Channel(channel)
    submission_id = submission_id or new_submission_id()
    if not valid_submission_id(submission_id):
        raise IntakeError(gettext("提交编号无效，请刷新页面后重新填写。"))
    existing = find_submission(institution, submission_id)
    if existing is not None:
        return existing, lookup_code_for(institution.id, submission_id)

    kept = len(pending_files(institution.id, submission_id))
    checked = check_complaint(
        institution, channel=channel, received_at=received_at, subject=subject,
        description=description, wish=wish, category=category, touchpoint=touchpoint,
        departments_concerned=departments_concerned, staff_involved=staff_involved,
        complainant_name=complainant_name, complainant_phone=complainant_phone, relation=relation,
        channel_ref=channel_ref, rating=rating, attachments=attachments, kept_files=kept)
    category = checked.category

    try:
        with db.session.begin_nested():
            case_number = next_case_number(institution, received_at)
            code = lookup_code_for(institution.id, submission_id)
            complaint = Complaint(
                institution_id=institution.id, case_number=case_number, channel=channel.value,
                channel_ref=checked.channel_ref, received_at=received_at,
                first_contact_id=first_contact.id if first_contact is not None else None,
                category_id=category.id, touchpoint_id=touchpoint.id if touchpoint is not None else None,
                survey_response_id=rating.response_id if rating is not None else None,
                submission_hash=_submission_hash(institution.id, submission_id),
                lookup_code_hash=hash_lookup_code(institution.id, case_number, code),
                subject=checked.subject, description=checked.description, wish=checked.wish,
                staff_involved=checked.staff_involved, complainant_name=checked.name,
                complainant_phone=checked.phone, complainant_relation=checked.relation, safety_emergency=False)
            complaint.concerned_departments = checked.departments
            db.session.add(complaint)
            db.session.flush()
    except IntegrityError:
        # A twin of this submission committed while this one waited for the case number.
        existing = find_submission(institution, submission_id)
        if existing is None:
            raise
        return existing, lookup_code_for(institution.id, submission_id)

    files = take_pending(institution.id, submission_id) + checked.files
    uploader = getattr(actor, "id", None) if isinstance(actor, StaffUser) else None
    for item in files:
        db.session.add(Attachment(complaint_id=complaint.id, filename=item.filename, content_type=item.content_type,
                                  size=item.size, data=item.data, uploaded_by_id=uploader))
    log_event(complaint, "registered", actor=actor,
              data={"channel": channel.value, "category": category.code, "attachments": len(files),
                    **({"survey_response_id": rating.response_id} if rating is not None else {}),
                    **({"first_contact_id": first_contact.id} if first_contact is not None else {})})
    # The answer period runs from the day of receipt (民法典 第二百零一条), not from acceptance.
    deadline = start_clock(complaint, actor=actor)
    db.session.flush()
    record(actor, "complaint.register", complaint,
           {"channel": channel.value, "category": category.code, "attachments": len(files),
            "departments": [d.id for d in checked.departments],
            "has_contact": bool(checked.name or checked.phone), "due_date": deadline.due_date.isoformat()})
    if safety_emergency:
        flag_emergency(complaint, actor=actor)
    elif category.safety and first_contact is None:
        report_safety(complaint, actor=actor)
    return complaint, code


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
