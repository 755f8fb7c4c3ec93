"""Discharges in (the file upload and the JSON API), the discharge-slip one-time link, and the purge.

Names and phone numbers exist only for the follow-up call (PIPL: store the least): they
never reach an audit entry, a log line or an export, and the daily purge nulls them once
the retention period after discharge has passed. The hospital's own reference (住院号) is
kept only as a keyed hash, enough to recognise a re-sent discharge and never enough to read
it back.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, cast

from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from core import signing
from core.audit import record
from core.clock import local_midnight, local_today
from core.db import utcnow
from core.extensions import db
from core.phone import InvalidPhone, normalise_phone
from core.public import public_url
from core.table_reader import ImportFileError, header_positions, parse_date, read_table
from core.tabular import Sheet
from organisation.importer import RowError
from organisation.models import Department, Institution, Touchpoint, TouchpointKind
from survey.followup import FollowupError, followup_settings
from survey.models import (
    Channel,
    ContactRequest,
    Discharge,
    FollowupOutcome,
    SurveySettings,
)
from survey.submission import Context, Stored, find_by_submission_id, submit_response

if TYPE_CHECKING:
    from sqlalchemy import CursorResult

LINK_PURPOSE = "discharge-link"
REF_PURPOSE = "discharge-ref"
MAX_ROWS = 5000
MAX_NAME = 40
MAX_REF = 64
SOURCES = ("upload", "api")

# column key -> (header shown, accepted header aliases)
COLUMNS: dict[str, tuple[Any, set[str]]] = {
    "unit": (_l("病区/科室编码"), {"病区编码", "科室编码", "病区", "科室", "ward", "department", "unit", "unit_code"}),
    "discharge_date": (_l("出院日期"), {"discharge_date", "date", "出院时间"}),
    "patient_name": (_l("患者姓名"), {"姓名", "patient_name", "name"}),
    "phone": (_l("联系电话"), {"电话", "手机", "手机号", "联系电话", "phone", "mobile"}),
    "ref": (_l("住院号"), {"ref", "admission_no", "病案号", "住院号"}),
}



# Validating one discharge (shared by the upload and the API) -------------

@dataclass
class DischargeInput:
    department: Department
    touchpoint: Touchpoint | None
    discharge_date: date
    patient_name: str
    phone: str
    ref: str


@dataclass
class Units:
    """An institution's departments and ward touchpoints by code, loaded once per batch. Codes are unique
    regardless of case (organisation's rule), so a file's "icu" finds the ward coded "ICU"."""

    departments: dict[str, Department]
    wards: dict[str, Touchpoint]

    @classmethod
    def load(cls, institution: Institution) -> Units:
        departments = {d.code.casefold(): d for d in db.session.scalars(
            select(Department).where(Department.institution_id == institution.id))}
        wards = {t.code.casefold(): t for t in db.session.scalars(
            select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                     Touchpoint.kind == TouchpointKind.WARD.value))}
        return cls(departments, wards)


def check_discharge(raw: dict[str, str], units: Units, settings: SurveySettings, *,
                    today: date) -> tuple[DischargeInput | None, list[tuple[str, str]]]:
    """Validate one discharge's fields; returns the input or [(field key, message)]."""
    errors: list[tuple[str, str]] = []
    values = {key: (raw.get(key) or "").strip() for key in COLUMNS}
    for key in COLUMNS:
        if not values[key]:
            errors.append((key, gettext("不能为空。")))
    department = touchpoint = None
    if values["unit"]:
        code = values["unit"].casefold()
        touchpoint = units.wards.get(code)
        department = touchpoint.department if touchpoint is not None else units.departments.get(code)
        if department is None:
            errors.append(("unit", gettext("病区或科室编码 %(code)s 不存在。", code=values["unit"])))
        elif not department.active or (touchpoint is not None and not touchpoint.active):
            errors.append(("unit", gettext("病区或科室 %(code)s 已停用。", code=values["unit"])))
    discharge_date = None
    if values["discharge_date"]:
        discharge_date = parse_date(values["discharge_date"])
        if discharge_date is None:
            errors.append(("discharge_date", gettext("无法识别的日期“%(value)s”，请写成 2026-12-05 这样的日期。",
                                                      value=values["discharge_date"][:20])))
        elif discharge_date > today:
            errors.append(("discharge_date", gettext("出院日期不能晚于今天。")))
        elif discharge_date < today - timedelta(days=settings.contact_retention_days):
            # Contact data this old would be purged at once: it must not be stored at all.
            errors.append(("discharge_date", gettext(
                "出院已超过 %(n)d 天（联系方式保留期限），不再随访，请勿上传。", n=settings.contact_retention_days)))
    if len(values["patient_name"]) > MAX_NAME:
        errors.append(("patient_name", gettext("超过 %(n)d 个字符。", n=MAX_NAME)))
    phone = ""
    try:
        phone = normalise_phone(values["phone"]) or ""
    except InvalidPhone as exc:
        errors.append(("phone", str(exc)))
    if len(values["ref"]) > MAX_REF:
        errors.append(("ref", gettext("超过 %(n)d 个字符。", n=MAX_REF)))
    if errors:
        return None, errors
    assert department is not None and discharge_date is not None  # else "unit" or "discharge_date" has an error
    return DischargeInput(department=department, touchpoint=touchpoint, discharge_date=discharge_date,
                          patient_name=values["patient_name"], phone=phone, ref=values["ref"]), []


def ref_hash(ref: str) -> str:
    return signing.hash_value(REF_PURPOSE, ref.strip())


def link_expiry(discharge_date: date, settings: SurveySettings) -> datetime:
    """The slip link works through the link_valid_days-th day after discharge (Beijing time)."""
    return local_midnight(discharge_date + timedelta(days=settings.link_valid_days + 1))


def create_discharge(institution: Institution, data: DischargeInput, *, source: str, actor: Any,
                     settings: SurveySettings | None = None) -> tuple[Discharge, str]:
    """Store a discharge; the same hospital reference again updates it, never duplicates it.

    Returns the discharge and what happened: "created", "updated" or "unchanged".
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    settings = settings or followup_settings(institution.id)
    if data.department.institution_id != institution.id or (
            data.touchpoint is not None and data.touchpoint.institution_id != institution.id):
        raise FollowupError(gettext("病区或科室不属于本机构。"))
    hashed = ref_hash(data.ref)
    discharge: Discharge | None = db.session.scalar(select(Discharge).where(
        Discharge.institution_id == institution.id, Discharge.external_ref_hash == hashed))
    created = discharge is None
    if discharge is None:
        discharge = Discharge(institution_id=institution.id, external_ref_hash=hashed, source=source,
                              outcome=FollowupOutcome.PENDING.value, attempts=0)
        db.session.add(discharge)
    before = _snapshot(discharge)
    discharge.department_id = data.department.id
    discharge.touchpoint_id = data.touchpoint.id if data.touchpoint else None
    discharge.discharge_date = data.discharge_date
    discharge.link_expires_at = link_expiry(data.discharge_date, settings)
    if discharge.purged_at is None:  # contact data, once purged, is never brought back
        discharge.patient_name = data.patient_name
        discharge.phone = data.phone
    if not created and before == _snapshot(discharge):
        return discharge, "unchanged"
    db.session.flush()
    # No name, phone or reference here: the audit log is kept for years.
    record(actor, "discharge.create" if created else "discharge.update", discharge, {
        "department_id": discharge.department_id, "touchpoint_id": discharge.touchpoint_id,
        "discharge_date": discharge.discharge_date.isoformat(), "source": source})
    return discharge, "created" if created else "updated"


def _snapshot(discharge: Discharge) -> tuple:
    return (discharge.department_id, discharge.touchpoint_id, discharge.discharge_date,
            discharge.patient_name, discharge.phone)


# Upload ------------------------------------------------------------------

@dataclass
class DischargeImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def template_sheet() -> Sheet:
    """The upload's template: the header row alone (core.tabular writes it as the CSV the upload accepts)."""
    return Sheet(gettext("出院名单"), [str(shown) for shown, _aliases in COLUMNS.values()], [])


def _map_header(header: list[str]) -> dict[str, int]:
    with force_locale("zh_Hans"):  # the template is downloaded in Chinese whatever the page language
        chinese = {key: str(shown) for key, (shown, _aliases) in COLUMNS.items()}
    positions = header_positions(header, {key: {str(shown), chinese[key], *aliases}
                                          for key, (shown, aliases) in COLUMNS.items()})
    missing = [str(shown) for key, (shown, _a) in COLUMNS.items() if key not in positions]
    if missing:
        raise ImportFileError(gettext("缺少必填列：%(columns)s。请使用导入模板。", columns=gettext("、").join(missing)))
    return positions


def import_discharges(institution: Institution, filename: str, stream: IO[bytes], *, actor: Any,
                      today: date | None = None) -> DischargeImportReport:
    """Check every row of a discharge list, then store them all or none (re-sent references update)."""
    today = today or local_today()
    rows = read_table(filename, stream)
    header = next(rows, None)
    if header is None:
        raise ImportFileError(gettext("文件是空的。"))
    positions = _map_header(header)
    records: list[tuple[int, dict[str, str]]] = []
    for number, cells in enumerate(rows, start=2):
        if not any(cells):
            continue
        if len(records) >= MAX_ROWS:
            raise ImportFileError(gettext("一次最多导入 %(n)d 行。", n=MAX_ROWS))
        records.append((number, {key: (cells[i] if i < len(cells) else "") for key, i in positions.items()}))
    if not records:
        raise ImportFileError(gettext("文件中没有数据行。"))
    report = DischargeImportReport(rows=len(records))
    units = Units.load(institution)
    settings = followup_settings(institution.id)
    seen: dict[str, int] = {}
    valid: list[DischargeInput] = []
    for number, values in records:
        data, errors = check_discharge(values, units, settings, today=today)
        report.errors.extend(RowError(number, str(COLUMNS[key][0]), message) for key, message in errors)
        ref = values.get("ref", "").strip()
        if ref and ref in seen:
            report.errors.append(RowError(number, str(COLUMNS["ref"][0]),
                                          gettext("与第 %(row)d 行重复。", row=seen[ref])))
            continue
        seen.setdefault(ref, number)
        if data is not None:
            valid.append(data)
    if report.errors:
        return report
    for data in valid:
        _discharge, status = create_discharge(institution, data, source="upload", actor=actor, settings=settings)
        setattr(report, status, getattr(report, status) + 1)
    record(actor, "discharge.import", institution, {"rows": report.rows, "created": report.created,
                                                    "updated": report.updated})
    db.session.flush()
    return report


# Purge -------------------------------------------------------------------

def purge_contact_data(*, now: datetime) -> dict[str, int]:
    """Null the name and phone of discharges, and the phone of contact requests, once
    contact_retention_days have passed (after discharge, resp. after the request); idempotent."""
    today = local_today(now)
    purged = {"discharges": 0, "contact_requests": 0}
    institution_ids = set(db.session.scalars(select(Discharge.institution_id).where(
        Discharge.purged_at.is_(None)).distinct()))
    institution_ids |= set(db.session.scalars(select(ContactRequest.institution_id).where(
        ContactRequest.phone.is_not(None)).distinct()))
    for institution_id in sorted(institution_ids):
        days = followup_settings(institution_id).contact_retention_days
        # An UPDATE's result (a CursorResult) carries its row count.
        discharges = cast("CursorResult[Any]", db.session.execute(
            update(Discharge)
            .where(Discharge.institution_id == institution_id, Discharge.purged_at.is_(None),
                   Discharge.discharge_date < today - timedelta(days=days))
            .values(patient_name=None, phone=None, purged_at=now)
            .execution_options(synchronize_session=False))).rowcount
        requests = cast("CursorResult[Any]", db.session.execute(
            update(ContactRequest)
            .where(ContactRequest.institution_id == institution_id, ContactRequest.phone.is_not(None),
                   ContactRequest.created_at < now - timedelta(days=days))
            .values(phone=None, purged_at=now)
            .execution_options(synchronize_session=False))).rowcount
        if discharges or requests:
            record("purge-job", "survey.purge_contact_data", db.session.get(Institution, institution_id),
                   {"discharges": discharges, "contact_requests": requests, "retention_days": days})
        purged["discharges"] += discharges
        purged["contact_requests"] += requests
    _expire_loaded(Discharge, "patient_name", "phone", "purged_at")
    _expire_loaded(ContactRequest, "phone", "purged_at")
    return purged


def _expire_loaded(model: type, *attributes: str) -> None:
    # Bulk UPDATEs bypass the identity map, and SQLAlchemy's own synchronisation leaves
    # some attributes stale: reload them on next access instead.
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, model):
            db.session.expire(obj, list(attributes))


# The discharge-slip one-time link ---------------------------------------

def discharge_link_token(discharge: Discharge) -> str:
    return signing.signed_id(LINK_PURPOSE, discharge.id)


def discharge_link_url(discharge: Discharge) -> str:
    """The survey URL printed on the discharge slip."""
    return public_url("patient.discharge_survey", token=discharge_link_token(discharge))


def resolve_link(token: str, *, now: datetime | None = None) -> tuple[Discharge | None, str | None]:
    """The discharge a slip link names; problem is 'invalid', 'used' or 'expired' when it can't be used."""
    return signing.resolve_link(LINK_PURPOSE, token, Discharge, used="link_used_at", expires="link_expires_at",
                                now=now)


def use_discharge_link(discharge: Discharge, context: Context, submission_id: str, get: Callable[[str], Any],
                       getlist: Callable[[str], list]) -> Stored:
    """Store the slip survey and mark the link used in the same transaction; a link works once."""
    # Lock the row so that two different submissions racing on one link cannot both pass.
    locked: Discharge = db.session.scalars(select(Discharge).where(Discharge.id == discharge.id).with_for_update()
                                           .execution_options(populate_existing=True)).one()
    if locked.link_used_at is not None:
        repeat = find_by_submission_id(submission_id)
        if repeat is not None and repeat.channel == Channel.DISCHARGE_LINK.value \
                and repeat.institution_id == locked.institution_id:
            return Stored(repeat, False)  # the patient's own retry after the first copy got through
        raise FollowupError(gettext("此链接已使用，感谢您的评价"))
    stored = submit_response(context, submission_id, get, getlist)
    if stored.created:
        locked.link_used_at = utcnow()
        record("patient", "discharge.link_used", locked, {"response_id": stored.response.id})
    return stored
