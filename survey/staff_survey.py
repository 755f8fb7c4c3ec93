"""The staff satisfaction survey: one-time anonymous tokens per department, and results.

Anonymity rules:
- A response never points back at the token that opened it, and using a
  token writes no audit entry: the entry's timestamp would link the two again.
- A token's ``used_at`` is kept to the day only, for the same reason.
- Results are shown only for groups of at least ``staff_min_group`` answers
  (default 5). A smaller group shows no number at all, not even its count,
  and the institution's total is withheld when subtracting the shown groups
  from it would reveal a smaller group's answers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core import signing
from core.audit import record
from core.clock import local_date, local_midnight
from core.db import utcnow
from core.extensions import db
from core.public import public_url
from core.services import ServiceError, clean_text
from core.tabular import Sheet
from organisation.models import Department, Institution
from survey import definitions
from survey.models import (
    Audience,
    Channel,
    StaffSurveyBatch,
    StaffSurveyToken,
    SurveyResponse,
    SurveyTemplate,
    TemplateVersion,
)
from survey.submission import Context, settings_for, submit_response
from survey.versioning import templates_for

PURPOSE = "staff-token"
MAX_BATCH_SIZE = 1000
LABEL_LIMIT = 80


class StaffSurveyError(ServiceError):
    """A staff survey rule was broken; the message is for the user."""


# Batches and tokens -------------------------------------------------------

def staff_templates(institution: Institution) -> list[SurveyTemplate]:
    """Active staff templates the institution may hand out: those with a published version."""

    return [t for t in templates_for(institution, audience=Audience.STAFF.value)
            if t.active and t.published is not None]


def create_batch(institution: Institution, department: Department, template: SurveyTemplate, size: int, *,
                 actor: Any, label: str = "") -> StaffSurveyBatch:
    """Issue ``size`` one-time anonymous tokens for one department; they expire after link_valid_days."""
    if department.institution_id != institution.id or not department.active:
        raise StaffSurveyError(gettext("请选择本院一个启用中的科室。"), "department_id")
    if template.institution_id not in (None, institution.id) or template.audience != Audience.STAFF.value:
        raise StaffSurveyError(gettext("请选择一份医务人员满意度问卷。"), "template_id")
    if not template.active or template.published is None:
        raise StaffSurveyError(gettext("该问卷没有已发布的版本，不能发放。"), "template_id")
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise StaffSurveyError(gettext("份数须在 1 到 %(n)d 之间。", n=MAX_BATCH_SIZE), "size")
    settings = settings_for(institution.id)
    now = utcnow()
    label = clean_text(label, field="label", label=gettext("名称"), limit=LABEL_LIMIT, error=StaffSurveyError) \
        or gettext("%(dept)s %(date)s", dept=department.name, date=day_text(now))[:LABEL_LIMIT]
    batch = StaffSurveyBatch(institution_id=institution.id, label=label, department_id=department.id,
                             template_id=template.id, size=size, created_by_id=getattr(actor, "id", None),
                             created_at=now, expires_at=now + timedelta(days=settings.link_valid_days))
    db.session.add(batch)
    db.session.flush()
    db.session.add_all([StaffSurveyToken(institution_id=institution.id, batch_id=batch.id) for _ in range(size)])
    db.session.flush()
    record(actor, "staff_survey.create_batch", batch, {"department_id": department.id,
                                                       "template_id": template.id, "size": size})
    return batch


def token_path(token: StaffSurveyToken) -> str:
    return signing.signed_id(PURPOSE, token.id)


def token_url(token: StaffSurveyToken) -> str:
    """The absolute /s/<signed id> URL printed on a slip."""
    return public_url("patient.staff_survey", token=token_path(token))


def batch_urls(batch: StaffSurveyBatch) -> list[str]:
    return [token_url(t) for t in batch.tokens]


def batch_used_count(batch: StaffSurveyBatch) -> int:
    return db.session.scalar(select(func.count()).select_from(StaffSurveyToken).where(
        StaffSurveyToken.batch_id == batch.id, StaffSurveyToken.used_at.is_not(None))) or 0


def urls_sheet(batch: StaffSurveyBatch) -> Sheet:
    """The batch's links as a table (core.tabular writes it), for mail merge or messaging."""
    expires = local_date(batch.expires_at)
    rows = [[number, batch.department.name, url, expires] for number, url in enumerate(batch_urls(batch), start=1)]
    return Sheet(batch.label, [gettext("序号"), gettext("科室"), gettext("问卷链接"), gettext("有效期至")], rows)


def day_text(value: datetime) -> str:
    """A stored moment's hospital calendar day as YYYY-MM-DD (a batch's expiry, the default batch label)."""
    return local_date(value).isoformat()


def resolve_token(value: str, *, lock: bool = False) -> tuple[StaffSurveyToken | None, str | None]:
    """The token a /s/ URL names; problem is 'invalid', 'used', 'expired' or 'closed' when it can't be used."""
    token, problem = signing.resolve_link(PURPOSE, value, StaffSurveyToken, used="used_at", expires="expires_at",
                                          lock=lock)
    if problem is not None:
        return token, problem
    batch = token.batch
    if batch.template.published is None:
        return token, "closed"
    return token, None


def submit_with_token(token: StaffSurveyToken, submission_id: str, get: Callable[[str], Any],
                      getlist: Callable[[str], list], *, form_problem: str | None = None,
                      fill_seconds: float | None = None) -> tuple[SurveyResponse, bool]:
    """Store one anonymous staff response and use up the token, in the caller's transaction.

    The response carries the batch's department and no device or network
    hash; nothing on it identifies the token.
    """
    batch = token.batch
    context = Context(institution_id=token.institution_id, channel=Channel.STAFF_TOKEN,
                      version=batch.template.published, department_id=batch.department_id,
                      form_problem=form_problem, fill_seconds=fill_seconds)
    stored = submit_response(context, submission_id, get, getlist, actor="staff-survey")
    if stored.created:
        today = datetime.combine(utcnow().date(), time.min, tzinfo=UTC)
        token.used_at = today
        db.session.flush()
    return stored.response, stored.created


# Results -------------------------------------------------------------------

@dataclass
class Cell:
    """One figure: the mean of the answers that scored it, or None when too few answered."""

    mean: float | None
    n: int


@dataclass
class GroupResult:
    key: str                      # department id as text, or "all"
    label: str
    department_id: int | None
    shown: bool
    n: int = 0                    # only meaningful when shown
    overall: Cell | None = None
    dimensions: dict[str, Cell] = field(default_factory=dict)


@dataclass
class StaffResults:
    template: SurveyTemplate
    year: int
    min_group: int
    dimensions: list[tuple[str, str]]     # (code, name) in definition order
    overall_label: str
    groups: list[GroupResult]
    total: GroupResult | None


@dataclass
class _Scores:
    overall: list[float] = field(default_factory=list)
    dimensions: dict[str, list[float]] = field(default_factory=dict)
    n: int = 0


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """[start, end) of a calendar year in the hospitals' time zone."""
    return local_midnight(date(year, 1, 1)), local_midnight(date(year + 1, 1, 1))


def years_with_responses(institution: Institution) -> list[int]:
    """Years (Beijing time) in which the institution received staff responses, newest first."""
    rows = db.session.scalars(select(SurveyResponse.submitted_at).where(
        SurveyResponse.institution_id == institution.id, SurveyResponse.channel == Channel.STAFF_TOKEN.value))
    return sorted({local_date(value).year for value in rows}, reverse=True)


def _response_scores(response: SurveyResponse) -> tuple[float | None, dict[str, float]]:
    definition = response.version.definition
    answers = [definitions.ParsedAnswer(a.item_code, a.value, a.score, a.not_applicable) for a in response.answers]
    overall_item = definitions.overall_item(definition)
    overall = None
    if overall_item is not None:
        answer = next((a for a in answers if a.code == overall_item["code"]), None)
        overall = answer.score if answer is not None else None
    return overall, definitions.dimension_scores(definition, answers)


def _cell(values: list[float], min_group: int) -> Cell:
    if len(values) < min_group:
        return Cell(None, len(values))
    return Cell(round(sum(values) / len(values), 1), len(values))


def _group(key: str, label: str, department_id: int | None, scores: _Scores, min_group: int,
           dimension_codes: list[str]) -> GroupResult:
    if scores.n < min_group:
        return GroupResult(key, label, department_id, shown=False)
    return GroupResult(key, label, department_id, shown=True, n=scores.n,
                       overall=_cell(scores.overall, min_group),
                       dimensions={c: _cell(scores.dimensions.get(c, []), min_group) for c in dimension_codes})


def staff_results(institution: Institution, template: SurveyTemplate, year: int, *,
                  departments: set[int] | None = None) -> StaffResults:
    """Per-department staff results for one template and calendar year, small groups withheld.

    ``departments`` limits the groups to a viewer's scope (department
    handlers); such viewers get no institution total.
    """
    min_group = max(int(settings_for(institution.id).staff_min_group or 5), 1)
    start, end = year_bounds(year)
    stmt = (select(SurveyResponse)
            .join(TemplateVersion, TemplateVersion.id == SurveyResponse.template_version_id)
            .where(SurveyResponse.institution_id == institution.id,
                   SurveyResponse.channel == Channel.STAFF_TOKEN.value,
                   SurveyResponse.excluded.is_(False),
                   TemplateVersion.template_id == template.id,
                   SurveyResponse.submitted_at >= start, SurveyResponse.submitted_at < end)
            .options(selectinload(SurveyResponse.answers), selectinload(SurveyResponse.version)))
    by_department: dict[int | None, _Scores] = {}
    total = _Scores()
    for response in db.session.scalars(stmt):
        overall, dims = _response_scores(response)
        for bucket in (by_department.setdefault(response.department_id, _Scores()), total):
            bucket.n += 1
            if overall is not None:
                bucket.overall.append(overall)
            for code, score in dims.items():
                bucket.dimensions.setdefault(code, []).append(score)

    current = template.published or (template.versions[-1] if template.versions else None)
    definition = current.definition if current is not None else {"dimensions": [], "items": []}
    dimensions = [(d["code"], d["name"] or d["code"]) for d in definition["dimensions"]]
    overall_label = gettext("总体满意度")
    codes = [c for c, _ in dimensions]

    known = {d.id: d for d in db.session.scalars(select(Department).where(
        Department.institution_id == institution.id))}
    names = {d_id: d.name for d_id, d in known.items()}
    order = {d_id: d.code for d_id, d in known.items()}
    all_groups = []
    for department_id, scores in sorted(by_department.items(), key=lambda kv: order.get(kv[0], "~")):
        label = names.get(department_id, gettext("未指定科室")) if department_id is not None else gettext("未指定科室")
        all_groups.append(_group(str(department_id), label, department_id, scores, min_group, codes))

    total_result = None
    if departments is None and total.n:
        total_result = _total(total, by_department, all_groups, min_group, codes)
    groups = [g for g in all_groups if departments is None or g.department_id in departments]
    return StaffResults(template=template, year=year, min_group=min_group, dimensions=dimensions,
                        overall_label=overall_label, groups=groups, total=total_result)


def _total(total: _Scores, by_department: dict[int | None, _Scores], groups: list[GroupResult], min_group: int,
           codes: list[str]) -> GroupResult:
    """The institution's row, withholding every figure that differencing would turn into a small group.

    Total minus the shown figures equals the withheld answers together, so a
    total figure is shown only if that remainder is empty or itself at least
    ``min_group`` answers.
    """
    hidden_n = sum(s.n for s in by_department.values() if s.n < min_group)
    if total.n < min_group or 0 < hidden_n < min_group:
        return GroupResult("all", gettext("全院"), None, shown=False)
    result = _group("all", gettext("全院"), None, total, min_group, codes)

    def shown_count(cell_of: Callable[[GroupResult], Cell | None]) -> int:
        return sum(cell.n for g in groups if g.shown and (cell := cell_of(g)) is not None and cell.mean is not None)

    def guarded(cell: Cell | None, cell_of: Callable[[GroupResult], Cell | None]) -> Cell | None:
        if cell is None or cell.mean is None:
            return cell
        left = cell.n - shown_count(cell_of)
        return cell if left == 0 or left >= min_group else Cell(None, cell.n)

    result.overall = guarded(result.overall, lambda g: g.overall)
    result.dimensions = {c: guarded(result.dimensions.get(c), lambda g, c=c: g.dimensions.get(c)) for c in codes}
    return result


def suppressed_message(min_group: int) -> str:
    return gettext("样本不足 %(n)d 份，不予显示", n=min_group)


def results_sheet(results: StaffResults) -> Sheet:
    """The results table (core.tabular writes it); withheld groups carry only the notice."""
    header = [gettext("科室"), gettext("答卷数"), results.overall_label] + [name for _code, name in results.dimensions]
    notice = suppressed_message(results.min_group)
    rows: list[list[Any]] = []
    for group in list(results.groups) + ([results.total] if results.total is not None else []):
        if not group.shown:
            rows.append([group.label, notice] + [""] * (1 + len(results.dimensions)))
            continue
        cells = [group.overall] + [group.dimensions.get(code) for code, _ in results.dimensions]
        rows.append([group.label, group.n] + [format_cell(c, notice) for c in cells])
    return Sheet(results.template.name, header, rows)


def format_cell(cell: Cell | None, notice: str = "") -> str:
    if cell is None:
        return ""
    if cell.mean is None:
        return notice
    return f"{cell.mean:.1f}"
