"""Staff-side reading of responses: filters, touchpoint summaries, exports."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, func, select

from core.clock import local_day_bounds, local_timezone
from core.extensions import db
from core.tabular import Sheet
from organisation.models import Department, Institution, Touchpoint
from survey.definitions import ITEM_TYPE_LABELS, MULTI, TEXT
from survey.models import Channel, SurveyAnswer, SurveyResponse, SurveyTemplate, TemplateVersion

FLAG_LABELS = {
    "token_invalid": _l("表单令牌无效"),
    "token_expired": _l("表单已过期"),
    "too_fast": _l("填写过快"),
    "repeat_device": _l("同一设备重复评价"),
    "ip_burst": _l("同一网络短时大量提交"),
}


@dataclass
class ResponseFilter:
    department_id: int | None = None
    touchpoint_id: int | None = None
    template_id: int | None = None
    channel: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    max_score: float | None = None
    min_score: float | None = None
    flagged: str = "exclude"   # exclude | only | all
    departments: set[int] | None = None  # department scope of the viewer (None: all)


def filtered(institution: Institution, f: ResponseFilter) -> Select:
    """Responses of one institution matching the filter, newest first."""
    # Staff answers are anonymous: they are only ever shown as group results
    # (survey/staff_survey.py), never one by one or in a row-level export.
    stmt = select(SurveyResponse).where(SurveyResponse.institution_id == institution.id,
                                        SurveyResponse.channel != Channel.STAFF_TOKEN.value)
    if f.departments is not None:
        stmt = stmt.where(SurveyResponse.department_id.in_(f.departments or {-1}))
    if f.department_id:
        stmt = stmt.where(SurveyResponse.department_id == f.department_id)
    if f.touchpoint_id:
        stmt = stmt.where(SurveyResponse.touchpoint_id == f.touchpoint_id)
    if f.template_id:
        stmt = stmt.join(TemplateVersion, TemplateVersion.id == SurveyResponse.template_version_id).where(
            TemplateVersion.template_id == f.template_id)
    if f.channel:
        stmt = stmt.where(SurveyResponse.channel == f.channel)
    if f.date_from:
        stmt = stmt.where(SurveyResponse.submitted_at >= local_day_bounds(f.date_from)[0])
    if f.date_to:
        stmt = stmt.where(SurveyResponse.submitted_at < local_day_bounds(f.date_to)[1])
    if f.max_score is not None:
        stmt = stmt.where(SurveyResponse.overall_score <= f.max_score)
    if f.min_score is not None:
        stmt = stmt.where(SurveyResponse.overall_score >= f.min_score)
    if f.flagged == "exclude":
        stmt = stmt.where(SurveyResponse.excluded.is_(False))
    elif f.flagged == "only":
        stmt = stmt.where(SurveyResponse.excluded.is_(True))
    return stmt.order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())


@dataclass
class TouchpointSummary:
    touchpoint: Touchpoint
    today_count: int
    today_average: float | None
    week_count: int
    week_average: float | None
    flagged_today: int


def touchpoint_summaries(institution: Institution, *, today: date, departments: set[int] | None = None
                         ) -> list[TouchpointSummary]:
    """Per touchpoint: today's and the last 7 days' counts and average scores (flagged rows left out)."""
    day_start, day_end = local_day_bounds(today)
    week_start = local_day_bounds(today - timedelta(days=6))[0]
    counted = SurveyResponse.excluded.is_(False)
    in_today = and_(SurveyResponse.submitted_at >= day_start, SurveyResponse.submitted_at < day_end)
    rows = db.session.execute(
        select(SurveyResponse.touchpoint_id,
               func.count().filter(and_(in_today, counted)),
               func.avg(SurveyResponse.overall_score).filter(and_(in_today, counted)),
               func.count().filter(counted),
               func.avg(SurveyResponse.overall_score).filter(counted),
               func.count().filter(and_(in_today, SurveyResponse.excluded.is_(True))))
        .where(SurveyResponse.institution_id == institution.id, SurveyResponse.touchpoint_id.is_not(None),
               SurveyResponse.submitted_at >= week_start, SurveyResponse.submitted_at < day_end)
        .group_by(SurveyResponse.touchpoint_id)).all()
    stats = {r[0]: r[1:] for r in rows}
    stmt = select(Touchpoint).where(Touchpoint.institution_id == institution.id, Touchpoint.active.is_(True))
    if departments is not None:
        stmt = stmt.where(Touchpoint.department_id.in_(departments or {-1}))
    result = []
    for tp in db.session.scalars(stmt.order_by(Touchpoint.department_id, Touchpoint.code)):
        today_count, today_avg, week_count, week_avg, flagged = stats.get(tp.id, (0, None, 0, None, 0))
        result.append(TouchpointSummary(tp, today_count, _round(today_avg), week_count, _round(week_avg), flagged))
    return result


def _round(value) -> float | None:
    return None if value is None else round(float(value), 1)


# Exports ---------------------------------------------------------------
#
# The download is one row per response. Each item's column is headed by its code and its
# wording, e.g. "WIN_OVERALL 您对本次窗口服务满意吗？": one header row, so that Excel shows what
# the column asks and pandas.read_csv still reads a single header (the code is the header up
# to its first space: df.columns.str.split(" ", n=1).str[0]). The XLSX adds a second sheet,
# 题目说明 (a data dictionary): every column, the full wording, the item type, its dimension,
# what each exported value means, and the questionnaire versions that asked it.

HEADER_TEXT = 40  # characters of an item's wording in its column header; the dictionary has all of it


@dataclass
class ExportItem:
    """An item as the export shows it: the wording and options of the latest version that asked it."""

    code: str
    text: str
    type: str
    dimension: str
    options: list[dict[str, Any]]
    versions: list[str]

    @property
    def header(self) -> str:
        text = " ".join(self.text.split())
        if len(text) > HEADER_TEXT:
            text = text[:HEADER_TEXT - 1] + "…"
        return f"{self.code} {text}" if text else self.code


def export_items(institution: Institution, stmt: Select) -> list[ExportItem]:
    """Items across every version the selected responses answered (in first-seen order; the latest wording)."""
    version_ids = select(SurveyResponse.template_version_id).where(
        SurveyResponse.id.in_(stmt.with_only_columns(SurveyResponse.id).order_by(None))).distinct()
    items: dict[str, ExportItem] = {}
    for number, definition, template_code in db.session.execute(
            select(TemplateVersion.number, TemplateVersion.definition, SurveyTemplate.code)
            .join(SurveyTemplate, SurveyTemplate.id == TemplateVersion.template_id)
            .where(TemplateVersion.id.in_(version_ids)).order_by(TemplateVersion.id)):
        dimensions = {d["code"]: d.get("name") or d["code"] for d in definition.get("dimensions", [])}
        for raw in definition["items"]:
            item = items.get(raw["code"])
            if item is None:
                item = items[raw["code"]] = ExportItem(raw["code"], "", raw["type"], "", [], [])
            item.text, item.type = raw.get("text", ""), raw["type"]
            item.dimension = dimensions.get(raw.get("dimension") or "", "")
            item.options = list(raw.get("options") or [])
            item.versions.append(f"{template_code} v{number}")
    return list(items.values())


def export_sheets(institution: Institution, stmt: Select, *, batch: int = 1000) -> list[Sheet]:
    """The responses (a CSV download writes this sheet alone) and the data dictionary (题目说明)."""
    items = export_items(institution, stmt)
    return [export_sheet(institution, stmt, items=items, batch=batch), dictionary_sheet(items)]


def _fixed_columns() -> list[tuple[str, str]]:
    """The columns before and after the items, with what they hold (for the data dictionary)."""
    flags = gettext("；").join(f"{code}={label}" for code, label in FLAG_LABELS.items())
    return [
        (gettext("编号"), gettext("答卷编号，与系统中“评价明细”的编号一致")),
        (gettext("提交时间"), gettext("北京时间")),
        (gettext("问卷"), gettext("问卷编码")),
        (gettext("版本"), gettext("问卷版本号")),
        (gettext("渠道"), ""),
        (gettext("科室"), ""),
        (gettext("服务点"), ""),
        (gettext("总体得分"), gettext("总体满意度题的得分，0–100 分")),
        (gettext("填写秒数"), gettext("从打开问卷到提交的秒数")),
        (gettext("异常标记"), gettext("多个以 ; 分隔：%(flags)s", flags=flags)),
        (gettext("是否排除"), gettext("“是”：因异常标记不计入得分")),
    ]


def export_sheet(institution: Institution, stmt: Select, *, items: list[ExportItem] | None = None,
                 batch: int = 1000) -> Sheet:
    """The selected responses as one table for core.tabular, one row per response read in batches. No personal data."""
    if items is None:
        items = export_items(institution, stmt)
    header = [name for name, _about in _fixed_columns()] + [item.header for item in items] + [gettext("意见")]
    return Sheet(gettext("评价明细"), header, _export_rows(institution, stmt, items, batch))


def dictionary_sheet(items: list[ExportItem]) -> Sheet:
    """What each column of the responses sheet holds: the full wording of each item and what its values mean."""
    header = [gettext("列名"), gettext("题目编码"), gettext("题目 / 说明"), gettext("题型"), gettext("维度"),
              gettext("导出值的含义"), gettext("所在问卷版本")]
    types = {code: str(label) for code, label in ITEM_TYPE_LABELS.items()}
    rows: list[list[Any]] = [[name, "", about, "", "", "", ""] for name, about in _fixed_columns()]
    for item in items:
        kind = types.get(item.type, item.type)
        if item.type == TEXT:
            meaning = gettext("文字答案见“意见”列")
        else:
            meaning = gettext("；").join(f"{'NA' if o.get('na') else o['value']}={o['label']}" for o in item.options)
            if item.type == MULTI:
                meaning = gettext("多个答案以 ; 分隔。") + meaning
        rows.append([item.header, item.code, item.text, kind, item.dimension, meaning,
                     gettext("、").join(item.versions)])
    rows.append([gettext("意见"), "", gettext("患者填写的文字意见（各文本题合并）"), "", "", "", ""])
    return Sheet(gettext("题目说明"), header, rows)


def _export_rows(institution: Institution, stmt: Select, items: list[ExportItem], batch: int
                 ) -> Iterator[list[Any]]:
    departments = dict(db.session.execute(select(Department.id, Department.name)
                                          .where(Department.institution_id == institution.id)).all())
    touchpoints = dict(db.session.execute(select(Touchpoint.id, Touchpoint.name)
                                          .where(Touchpoint.institution_id == institution.id)).all())
    versions = {v.id: (t.code, v.number) for v, t in db.session.execute(
        select(TemplateVersion, SurveyTemplate).join(SurveyTemplate))}
    tz = local_timezone()
    yes, no = gettext("是"), gettext("否")
    # Free text goes in the comment column once (it may be long, and is read there).
    codes = [(item.code, item.type == TEXT or item.code.endswith("_COMMENT")) for item in items]
    last_id = None
    base = stmt.order_by(None).order_by(SurveyResponse.id)
    while True:
        page_stmt = base if last_id is None else base.where(SurveyResponse.id > last_id)
        page = db.session.scalars(page_stmt.limit(batch)).all()
        if not page:
            return
        ids = [r.id for r in page]
        answers: dict[int, dict[str, Any]] = {}
        for a in db.session.scalars(select(SurveyAnswer).where(SurveyAnswer.response_id.in_(ids))):
            answers.setdefault(a.response_id, {})[a.item_code] = a
        for r in page:
            code, number = versions.get(r.template_version_id, ("", ""))
            by_code = answers.get(r.id, {})
            # The submission time as a naive local date-time: a real date in the XLSX, to the second in the CSV.
            yield ([r.id, r.submitted_at.astimezone(tz).replace(tzinfo=None), code, number,
                    str(Channel(r.channel).label), departments.get(r.department_id, ""),
                    touchpoints.get(r.touchpoint_id, ""), r.overall_score, r.fill_seconds,
                    ";".join(r.flags or []), yes if r.excluded else no]
                   + [_cell(by_code.get(c), free_text) for c, free_text in codes] + [r.comment])
        last_id = ids[-1]
        db.session.expunge_all()


def _cell(answer: SurveyAnswer | None, free_text: bool) -> Any:
    if answer is None or free_text:
        return ""
    if answer.not_applicable:
        return "NA"
    if isinstance(answer.value, list):
        return ";".join(answer.value)
    return answer.value
