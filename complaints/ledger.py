"""The complaint ledger (投诉台账): every case of an institution, filterable and exportable.

Seed 004 asks hospitals to "健全并落实患者投诉、接待、受理、处理、反馈制度，规范处理程序，
建立医患矛盾纠纷事件台账管理制度"; seed 000 to "建立工作台账，制定整改措施，逐项整改提高".
The ledger lists every case — open and closed, declined (不予受理) and settled on the
spot included — with fixed columns (acceptance check C15): case number, status,
channel, first-contact officer (首诉人), lead department, category, received, due,
replied, closed, on time (是/否/—), decline reason, satisfaction and rectification
(整改) status.

The complainant's name and phone number are never read here: no column, no
filter, no export. Subjects and descriptions are not columns either (they may
name the complainant); the case page shows them to staff who work the case.

Exports stream with flat memory: rows are read in keyset-paginated batches of
plain column tuples (never the ORM objects of the whole ledger); the CSV is a
generator, and the XLSX is written row by row into a temporary file that is then
streamed (see write_xlsx for why it does not go through openpyxl).
"""
from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, Any
from xml.sax.saxutils import escape

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased

from complaints.models import (
    CaseDepartment,
    Category,
    Channel,
    Complaint,
    DeclineReason,
    Feedback,
    Rectification,
    RectificationStatus,
    Satisfaction,
    Status,
)
from core.clock import local_day_bounds, local_timezone
from core.db import utcnow
from core.extensions import db
from organisation.models import Department, Institution, StaffUser

BATCH = 1000

SATISFACTION_LABELS = {"satisfied": _l("满意"), "basically": _l("基本满意"), "unsatisfied": _l("不满意")}
SATISFIED_VALUES = (Satisfaction.SATISFIED, Satisfaction.BASICALLY)

# Statuses in which no answer is owed any more, so no deadline can be missed.
NO_DEADLINE = (Status.DECLINED.value, Status.SETTLED.value)
CLOSED_STATUSES = (Status.CLOSED.value, Status.SETTLED.value)


def columns() -> list[str]:
    """The fixed ledger columns (C15), in order; the same for the page, the CSV and the XLSX."""
    return [gettext("案件编号"), gettext("状态"), gettext("投诉渠道"), gettext("首诉接待人"), gettext("主办科室"),
            gettext("投诉类别"), gettext("接收时间"), gettext("办理时限"), gettext("答复时间"), gettext("办结时间"),
            gettext("是否按时答复"), gettext("不予受理原因"), gettext("满意度"), gettext("整改状态")]


# Shared SQL expressions (the statistics use the same ones) -----------------------

def satisfaction_expr():
    """The complainant's satisfaction: the case's own field, else its latest answered feedback."""
    latest = (select(Feedback.answer)
              .where(Feedback.complaint_id == Complaint.id, Feedback.answer.is_not(None))
              .order_by(Feedback.answered_at.desc(), Feedback.id.desc()).limit(1)
              .correlate(Complaint).scalar_subquery())
    return func.coalesce(Complaint.satisfaction, latest)


def on_time_expr():
    """True: replied on or before the deadline."""
    return and_(Complaint.due_at.is_not(None), Complaint.status.not_in(NO_DEADLINE),
                Complaint.merged_into_id.is_(None), Complaint.replied_at.is_not(None),
                Complaint.replied_at <= Complaint.due_at)


def overdue_expr(now: datetime):
    """True: replied after the deadline, or still unanswered (and not paused) after it."""
    return and_(Complaint.due_at.is_not(None), Complaint.status.not_in(NO_DEADLINE),
                Complaint.merged_into_id.is_(None),
                or_(and_(Complaint.replied_at.is_not(None), Complaint.replied_at > Complaint.due_at),
                    and_(Complaint.replied_at.is_(None), Complaint.paused_since.is_(None),
                         Complaint.status != Status.CLOSED.value, Complaint.due_at <= now)))


def timeliness(*, status: str, due_at: datetime | None, replied_at: datetime | None,
               paused_since: datetime | None, merged: bool, now: datetime) -> bool | None:
    """The ledger's 是否按时答复 for one case, matching on_time_expr / overdue_expr: True, False or None (—)."""
    if due_at is None or status in NO_DEADLINE or merged:
        return None
    if replied_at is not None:
        return replied_at <= due_at
    if paused_since is None and status != Status.CLOSED.value and due_at <= now:  # as deadlines.is_overdue
        return False
    return None  # still within its deadline (or its clock is paused)


# Filters ---------------------------------------------------------------------

STATUS_GROUPS = {"open": [s.value for s in Status.open_statuses()] + [Status.REGISTERED.value],
                 "done": list(CLOSED_STATUSES)}


@dataclass
class LedgerFilter:
    """What the officer filtered the ledger by; every field optional."""

    date_from: date | None = None       # received on or after (local date)
    date_to: date | None = None         # received on or before (local date)
    status: str | None = None           # a Status value, or a group: "open", "done"
    category_id: int | None = None
    department_id: int | None = None    # the lead or a co-handling department
    channel: str | None = None
    timeliness: str | None = None       # "on_time" | "overdue"
    satisfaction: str | None = None     # satisfied | basically | unsatisfied | "none" (not answered)
    departments: set[int] | None = field(default=None)  # the viewer's department scope (None: all)


def conditions(institution: Institution, f: LedgerFilter, *, now: datetime | None = None) -> list[Any]:
    """WHERE clauses on Complaint selecting the ledger's cases of ``institution`` that match ``f``."""
    now = now or utcnow()
    where: list[Any] = [Complaint.institution_id == institution.id]
    if f.date_from:
        where.append(Complaint.received_at >= local_day_bounds(f.date_from)[0])
    if f.date_to:
        where.append(Complaint.received_at < local_day_bounds(f.date_to)[1])
    if f.status in STATUS_GROUPS:
        where.append(Complaint.status.in_(STATUS_GROUPS[f.status]))
    elif f.status:
        where.append(Complaint.status == f.status)
    if f.category_id:
        where.append(Complaint.category_id == f.category_id)
    if f.department_id:
        where.append(_touches([f.department_id]))
    if f.channel:
        where.append(Complaint.channel == f.channel)
    if f.timeliness == "on_time":
        where.append(on_time_expr())
    elif f.timeliness == "overdue":
        where.append(overdue_expr(now))
    if f.satisfaction == "none":
        where.append(satisfaction_expr().is_(None))
    elif f.satisfaction:
        where.append(satisfaction_expr() == f.satisfaction)
    if f.departments is not None:
        where.append(_touches(f.departments))
    return where


def _touches(department_ids: Iterable[int]):
    ids = list(department_ids) or [-1]
    return or_(Complaint.lead_department_id.in_(ids),
               exists().where(CaseDepartment.complaint_id == Complaint.id, CaseDepartment.department_id.in_(ids)))


# Rows ------------------------------------------------------------------------

@dataclass
class LedgerRow:
    id: int
    case_number: str
    status: str
    channel: str
    first_contact: str
    lead_department: str
    category: str
    received_at: datetime | None     # naive, in the hospital's time zone
    due: date | None
    replied_at: datetime | None
    closed_at: datetime | None
    on_time: bool | None
    decline_reason: str | None
    satisfaction: str | None
    rectification: str | None        # a RectificationStatus value summarising the case's actions



class Labels:
    """The translated labels of one export, looked up once (a gettext per cell costs more than the cell)."""

    def __init__(self) -> None:
        self.status = {m.value: str(m.label) for m in Status}
        self.channel = {m.value: str(m.label) for m in Channel}
        self.decline = {m.value: str(m.label) for m in DeclineReason}
        self.rectification = {m.value: str(m.label) for m in RectificationStatus}
        self.satisfaction = {k: str(v) for k, v in SATISFACTION_LABELS.items()}
        self.yes, self.no = gettext("是"), gettext("否")

    def cells(self, row: LedgerRow) -> list[Any]:
        """The row as the exports write it: labels for codes, real dates and times for dates."""
        return [row.case_number, self.status.get(row.status, row.status),
                self.channel.get(row.channel, row.channel), row.first_contact, row.lead_department, row.category,
                row.received_at, row.due, row.replied_at, row.closed_at,
                "—" if row.on_time is None else (self.yes if row.on_time else self.no),
                self.decline.get(row.decline_reason, row.decline_reason or ""),
                self.satisfaction.get(row.satisfaction, row.satisfaction or ""),
                self.rectification.get(row.rectification, row.rectification or "")]


RECTIFICATION_ORDER = {1: RectificationStatus.OPEN.value, 2: RectificationStatus.DONE.value,
                       3: RectificationStatus.VERIFIED.value}


def rectification_expr():
    """The case's rectification summary: 1 if any action is open, else 2 if any awaits verification, else 3."""
    rank = case((Rectification.status == RectificationStatus.OPEN.value, 1),
                (Rectification.status == RectificationStatus.DONE.value, 2), else_=3)
    return (select(func.min(rank)).where(Rectification.complaint_id == Complaint.id)
            .correlate(Complaint).scalar_subquery())


def _row_select(where: list[Any]) -> Select:
    """Plain columns for the ledger rows matching ``where`` (no ORM objects, one query per page or batch)."""
    contact = aliased(StaffUser)
    return (select(Complaint.id, Complaint.case_number, Complaint.status, Complaint.channel,
                   contact.display_name, Department.name, Category.name, Complaint.received_at, Complaint.due_date,
                   Complaint.due_at, Complaint.replied_at, Complaint.closed_at, Complaint.paused_since,
                   Complaint.merged_into_id, Complaint.decline_reason, satisfaction_expr(), rectification_expr())
            .outerjoin(contact, contact.id == Complaint.first_contact_id)
            .outerjoin(Department, Department.id == Complaint.lead_department_id)
            .outerjoin(Category, Category.id == Complaint.category_id)
            .where(*where))


ORDER = (Complaint.received_at.desc(), Complaint.id.desc())


def _materialise(raw: list[Any], now: datetime) -> list[LedgerRow]:
    """Turn raw tuples into rows: local times, the due day, the on-time verdict."""
    tz = local_timezone()

    def local(value: datetime | None) -> datetime | None:
        return value.astimezone(tz).replace(tzinfo=None) if value else None

    rows = []
    for (cid, number, status, channel, contact, department, category, received, due_date, due_at, replied, closed,
         paused, merged, decline, satisfaction, rectification) in raw:
        # due_at is 24:00 of the due day, i.e. the next midnight: the day is the one just before it.
        due = due_date or ((due_at.astimezone(tz) - timedelta(microseconds=1)).date() if due_at else None)
        rows.append(LedgerRow(
            id=cid, case_number=number, status=status, channel=channel, first_contact=contact or "",
            lead_department=department or "", category=category or "", received_at=local(received), due=due,
            replied_at=local(replied), closed_at=local(closed),
            on_time=timeliness(status=status, due_at=due_at, replied_at=replied, paused_since=paused,
                               merged=merged is not None, now=now),
            decline_reason=decline, satisfaction=satisfaction,
            rectification=RECTIFICATION_ORDER.get(rectification)))
    return rows


@dataclass
class LedgerPage:
    """One page of the ledger, shaped like Flask-SQLAlchemy's Pagination for the pager macro."""

    items: list[LedgerRow]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def page_of(institution: Institution, f: LedgerFilter, *, page: int = 1, per_page: int = 50,
            now: datetime | None = None) -> LedgerPage:
    """One page of the filtered ledger, newest received first."""
    now = now or utcnow()
    where = conditions(institution, f, now=now)
    total = db.session.scalar(select(func.count(Complaint.id)).where(*where))
    raw = db.session.execute(_row_select(where).order_by(*ORDER).limit(per_page).offset((page - 1) * per_page)).all()
    return LedgerPage(_materialise(raw, now), page, per_page, total or 0)


def iter_rows(institution: Institution, f: LedgerFilter, *, batch: int = BATCH,
              now: datetime | None = None) -> Iterator[LedgerRow]:
    """Every filtered case, oldest received first, read in keyset-paginated batches of ``batch`` rows."""
    now = now or utcnow()
    base = _row_select(conditions(institution, f, now=now)).order_by(Complaint.received_at, Complaint.id)
    last: tuple[datetime, int] | None = None
    while True:
        stmt = base
        if last is not None:
            # The plain ">=" lets the index (institution_id, received_at) start at the last row read;
            # the OR settles ties between cases received at the same instant.
            stmt = stmt.where(Complaint.received_at >= last[0],
                              or_(Complaint.received_at > last[0],
                                  and_(Complaint.received_at == last[0], Complaint.id > last[1])))
        raw = db.session.execute(stmt.limit(batch)).all()
        if not raw:
            return
        last = (raw[-1][7], raw[-1][0])
        yield from _materialise(raw, now)
        if len(raw) < batch:
            return


# Exports ---------------------------------------------------------------------

def _safe(cells: list[Any]) -> list[Any]:
    """Neutralise spreadsheet formulas in CSV text cells (CSV injection)."""
    return ["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v for v in cells]


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else value


def stream_csv(rows: Iterable[LedgerRow]) -> Iterator[str]:
    """The ledger as UTF-8 CSV with a BOM (so that Excel reads the Chinese), one chunk per batch of rows."""
    labels = Labels()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns())
    yield "\ufeff" + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for n, row in enumerate(rows, 1):
        writer.writerow(_safe([_csv_cell(c) for c in labels.cells(row)]))
        if n % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# The XLSX is written here rather than with openpyxl: openpyxl's write-only mode costs
# 0.1-0.5 ms a row on a small server (100,000 rows: 14 s when idle, about 50 s under load,
# past gunicorn's 30 s worker timeout; XlsxWriter's constant-memory mode takes half as
# long), while the sheet XML written directly costs about a microsecond a cell (1.3 s).
# The file is a plain SpreadsheetML package with inline strings (no shared-string table
# to hold in memory) and real Excel dates; the tests read it back with openpyxl.
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XLSX_STATIC = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        '</Types>'),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{_PKG_REL}">'
        f'<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>'),
    # Cell styles: 0 default, 1 date and time, 2 date, 3 bold (the header).
    "xl/styles.xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{_MAIN_NS}">'
        '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/>'
        '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'),
}
MAX_XLSX_ROWS = 1_048_575  # Excel's 1,048,576 rows, less the header
_WIDTHS = (16, 10, 16, 12, 14, 12, 17, 11, 17, 17, 10, 26, 10, 12)
_EXCEL_EPOCH = datetime(1899, 12, 30)
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _xml_text(value: str) -> str:
    return escape(_ILLEGAL_XML.sub("", value))


def _xml_cell(ref: str, value: Any, style: int = 0) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        delta = value - _EXCEL_EPOCH
        return f'<c r="{ref}" s="1"><v>{delta.days + delta.seconds / 86400!r}</v></c>'
    if isinstance(value, date):
        return f'<c r="{ref}" s="2"><v>{(value - _EXCEL_EPOCH.date()).days}</v></c>'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    text = _xml_text(str(value))
    space = ' xml:space="preserve"' if text != text.strip() else ""
    style_attr = f' s="{style}"' if style else ""
    return f'<c r="{ref}" t="inlineStr"{style_attr}><is><t{space}>{text}</t></is></c>'


def _xml_row(number: int, letters: list[str], cells: list[Any], style: int = 0) -> str:
    return (f'<row r="{number}">'
            + "".join([_xml_cell(f"{letter}{number}", value, style) for letter, value in zip(letters, cells)])
            + "</row>")


def write_xlsx(rows: Iterable[LedgerRow], *, title: str | None = None) -> tuple[IO[bytes], int]:
    """The ledger as an XLSX in a temporary file, written row by row (flat memory); returns (file, rows).

    The file is unlinked already and disappears when closed; it is positioned at 0 for streaming.
    Dates are Excel dates (yyyy-mm-dd hh:mm, yyyy-mm-dd); the header row is bold and frozen.
    """
    labels = Labels()
    header = columns()
    letters = [_column_letter(i) for i in range(len(header))]
    handle = tempfile.TemporaryFile(suffix=".xlsx")
    count = 0
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in _XLSX_STATIC.items():
            archive.writestr(name, body)
        sheet_name = _xml_text((title or gettext("投诉台账"))[:31]).replace('"', "&quot;")
        archive.writestr("xl/workbook.xml", (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{_MAIN_NS}" '
            f'xmlns:r="{_REL_NS}"><sheets><sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                           for i, w in enumerate(_WIDTHS[:len(header)], 1))
            sheet.write((
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN_NS}" '
                f'xmlns:r="{_REL_NS}"><sheetViews><sheetView workbookViewId="0">'
                '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
                '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
                f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData>'
                + _xml_row(1, letters, header, style=3)).encode())
            chunk: list[str] = []
            for row in rows:
                if count >= MAX_XLSX_ROWS:
                    break  # a worksheet's limit; the CSV has none
                count += 1
                # Minutes are enough in a ledger (and keep the serial numbers short).
                cells = [c.replace(second=0, microsecond=0) if isinstance(c, datetime) else c
                         for c in labels.cells(row)]
                chunk.append(_xml_row(count + 1, letters, cells))
                if len(chunk) >= 500:
                    sheet.write("".join(chunk).encode())
                    chunk.clear()
            sheet.write(("".join(chunk) + "</sheetData></worksheet>").encode())
    handle.seek(0)
    return handle, count


def export_filename(institution: Institution, f: LedgerFilter, fmt: str) -> str:
    """A readable Chinese file name: 投诉台账-<short name>-<from>至<to>.<fmt>."""
    name = institution.short_name or institution.name
    span = ""
    if f.date_from or f.date_to:
        span = "-" + (f.date_from.isoformat() if f.date_from else "") + gettext("至") + (
            f.date_to.isoformat() if f.date_to else "")
    return f"{gettext('投诉台账')}-{name}{span}.{fmt}"


def ascii_filename(institution: Institution, fmt: str) -> str:
    return f"complaint-ledger-{institution.id}-{datetime.now(local_timezone()):%Y%m%d}.{fmt}"
