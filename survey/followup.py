"""Discharge follow-up: the nurse's call list, call outcomes, answers taken by phone, and follow-up rates.

> 「三级医院出院患者一周内随访率力争达到100%」 — seed 004, item 13

Discharges arrive through survey.discharges; the settings (days to call, retention) are the
institution's survey settings.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select

from core import privacy
from core.audit import record
from core.clock import local_midnight
from core.db import utcnow
from core.extensions import db
from core.services import ServiceError
from organisation.models import Department, Institution, StaffUser, Touchpoint
from survey.models import (
    Channel,
    Discharge,
    FollowupCall,
    FollowupOutcome,
    SurveyResponse,
    SurveySettings,
    TemplateVersion,
)
from survey.submission import Context, Stored, submit_response
from survey.versioning import builtin_template

TARGET_RATE = 100.0  # 004 item 13: 三级医院出院患者一周内随访率力争达到100%


class FollowupError(ServiceError):
    """A follow-up rule was broken (400); the message is for the user (already translated)."""


# Time and settings -------------------------------------------------------

def followup_settings(institution_id: int) -> SurveySettings:
    """The institution's settings, or the national defaults (never written by a read)."""
    return SurveySettings.of(institution_id)


def mask_phone(phone: str | None) -> str:
    """138****5678 in lists other than the call list; a dash when there is none."""
    return privacy.mask_phone(phone) or "—"


def mask_name(name: str | None) -> str:
    """张** in lists other than the call list; a dash when there is none."""
    return privacy.mask_name(name) or "—"


# The call list and outcomes ---------------------------------------------

@dataclass
class DueCall:
    discharge: Discharge
    days_since: int
    due_by: date
    days_left: int


def _due_statement(institution: Institution, settings: SurveySettings, today: date,
                   department_ids: Iterable[int] | None):
    earliest = today - timedelta(days=settings.followup_days)
    final = [o.value for o in FollowupOutcome if o.is_final]
    stmt = (select(Discharge)
            .where(Discharge.institution_id == institution.id,
                   Discharge.discharge_date >= earliest, Discharge.discharge_date <= today,
                   Discharge.outcome.not_in(final), Discharge.purged_at.is_(None))
            .order_by(Discharge.discharge_date, Discharge.id))
    if department_ids is not None:
        stmt = stmt.where(Discharge.department_id.in_(list(department_ids)))
    return stmt


def due_count(institution: Institution, *, today: date, department_ids: Iterable[int] | None = None) -> int:
    """How many calls are due (the nurse's to-do list): the call list's rows, counted."""
    stmt = _due_statement(institution, followup_settings(institution.id), today, department_ids)
    return db.session.scalar(stmt.with_only_columns(func.count()).order_by(None)) or 0


def due_list(institution: Institution, *, today: date, department_ids: Iterable[int] | None = None) -> list[DueCall]:
    """Discharges whose call is due: discharged within the last followup_days days, not finally
    resolved, not purged; oldest discharge first."""
    settings = followup_settings(institution.id)
    stmt = _due_statement(institution, settings, today, department_ids)
    calls = []
    for discharge in db.session.scalars(stmt):
        due_by = discharge.discharge_date + timedelta(days=settings.followup_days)
        calls.append(DueCall(discharge, (today - discharge.discharge_date).days, due_by, (due_by - today).days))
    return calls


def record_call(discharge: Discharge, outcome: FollowupOutcome | str, *, nurse: StaffUser,
                now: datetime | None = None) -> FollowupCall:
    """Record one call attempt; reached, wrong number and declined end the follow-up."""
    try:
        outcome = FollowupOutcome(outcome)
    except ValueError:
        raise FollowupError(gettext("请选择有效的回访结果。")) from None
    if outcome == FollowupOutcome.PENDING:
        raise FollowupError(gettext("请选择有效的回访结果。"))
    if discharge.purged_at is not None:
        raise FollowupError(gettext("该患者的联系方式已按规定清除，不能再记录回访。"))
    if FollowupOutcome(discharge.outcome).is_final:
        raise FollowupError(gettext("该患者的回访已结束（%(outcome)s）。",
                                    outcome=FollowupOutcome(discharge.outcome).label))
    now = now or utcnow()
    call = FollowupCall(institution_id=discharge.institution_id, discharge=discharge, nurse_id=nurse.id,
                        outcome=outcome.value, called_at=now)
    db.session.add(call)
    discharge.attempts = (discharge.attempts or 0) + 1
    discharge.last_call_at = now
    discharge.outcome = outcome
    db.session.flush()
    record(nurse, "followup.call", discharge, {"outcome": outcome.value, "attempt": discharge.attempts,
                                               "call_id": call.id})
    return call


def inpatient_version() -> TemplateVersion | None:
    """The published version of the shipped inpatient template (IPD)."""

    template = builtin_template("IPD")
    return template.published if template is not None else None


def answerable_call(discharge: Discharge) -> FollowupCall | None:
    """The reached call whose answers have not been entered yet."""
    return next((c for c in reversed(discharge.calls)
                 if c.outcome == FollowupOutcome.REACHED.value and c.response_id is None), None)


def record_phone_answers(discharge: Discharge, submission_id: str, get: Callable[[str], Any],
                         getlist: Callable[[str], list], *, nurse: StaffUser) -> Stored:
    """Store the answers a reached patient gave by phone, as a phone-mode response naming the interviewer."""
    call = answerable_call(discharge)
    if call is None:
        answered = next((c for c in discharge.calls if c.response_id is not None), None)
        if answered is not None:
            response = db.session.get(SurveyResponse, answered.response_id)
            if response is not None and response.submission_id == submission_id:
                return Stored(response, False)  # the same form sent twice
            raise FollowupError(gettext("该患者的电话回访答案已录入。"))
        raise FollowupError(gettext("只有“已接通”的回访才能录入答案。"))
    version = inpatient_version()
    if version is None:
        raise FollowupError(gettext("住院患者问卷尚未安装，请联系管理员。"))
    context = Context(institution_id=discharge.institution_id, channel=Channel.PHONE_FOLLOWUP, version=version,
                      touchpoint=discharge.touchpoint, department_id=discharge.department_id,
                      interviewer_id=nurse.id)
    stored = submit_response(context, submission_id, get, getlist, actor=nurse)
    if stored.created:
        call.response_id = stored.response.id
        record(nurse, "followup.answers", discharge, {"call_id": call.id, "response_id": stored.response.id})
    return stored


# Rates -------------------------------------------------------------------

@dataclass
class RateRow:
    key: tuple[int, int | None]
    label: str
    discharges: int = 0
    called: int = 0
    reached: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.reached * 100.0 / self.discharges, 1) if self.discharges else None

    @property
    def gap(self) -> float | None:
        return None if self.rate is None else round(TARGET_RATE - self.rate, 1)

    @property
    def meets_target(self) -> bool:
        return self.rate is not None and self.rate >= TARGET_RATE


@dataclass
class RateReport:
    year: int
    month: int
    followup_days: int
    rows: list[RateRow]
    total: RateRow
    target: float = TARGET_RATE


def month_bounds(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def followup_rates(institution: Institution, year: int, month: int, *,
                   department_ids: Iterable[int] | None = None) -> RateReport:
    """Per ward (else department), the share of the month's discharges reached by a call made
    within followup_days of discharge, against the 100 % target."""
    settings = followup_settings(institution.id)
    start, end = month_bounds(year, month)
    stmt = (select(Discharge.id, Discharge.department_id, Discharge.touchpoint_id, Discharge.discharge_date)
            .where(Discharge.institution_id == institution.id, Discharge.discharge_date >= start,
                   Discharge.discharge_date < end))
    if department_ids is not None:
        stmt = stmt.where(Discharge.department_id.in_(list(department_ids)))
    discharges = db.session.execute(stmt).all()
    calls: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    ids = [row.id for row in discharges]
    for chunk in range(0, len(ids), 1000):
        for call in db.session.execute(select(FollowupCall.discharge_id, FollowupCall.outcome, FollowupCall.called_at)
                                       .where(FollowupCall.discharge_id.in_(ids[chunk:chunk + 1000]))):
            calls[call.discharge_id].append((call.outcome, call.called_at))
    names = _unit_names(institution)
    rows: dict[tuple[int, int | None], RateRow] = {}
    total = RateRow(key=(0, None), label=gettext("全院合计"))
    for row in discharges:
        key = (row.department_id, row.touchpoint_id)
        unit = rows.get(key)
        if unit is None:
            unit = rows[key] = RateRow(key=key, label=_unit_label(names, *key))
        deadline = local_midnight(row.discharge_date + timedelta(days=settings.followup_days + 1))
        in_window = [outcome for outcome, called_at in calls.get(row.id, []) if called_at < deadline]
        for target in (unit, total):
            target.discharges += 1
            target.called += bool(in_window)
            target.reached += FollowupOutcome.REACHED.value in in_window
    return RateReport(year=year, month=month, followup_days=settings.followup_days,
                      rows=sorted(rows.values(), key=lambda r: r.label), total=total)


def _unit_names(institution: Institution) -> dict[str, dict[int, str]]:
    return {
        "department": dict(db.session.execute(select(Department.id, Department.name)
                                              .where(Department.institution_id == institution.id)).all()),
        "touchpoint": dict(db.session.execute(select(Touchpoint.id, Touchpoint.name)
                                              .where(Touchpoint.institution_id == institution.id)).all()),
    }


def _unit_label(names: dict[str, dict[int, str]], department_id: int, touchpoint_id: int | None) -> str:
    if touchpoint_id is not None and touchpoint_id in names["touchpoint"]:
        return names["touchpoint"][touchpoint_id]
    return names["department"].get(department_id, str(department_id))


def unit_label(discharge: Discharge) -> str:
    return discharge.touchpoint.name if discharge.touchpoint is not None else discharge.department.name
