"""The complaint ledger (投诉台账): every case of an institution, filterable and exportable.

Seed 004 asks hospitals to "健全并落实患者投诉、接待、受理、处理、反馈制度，规范处理程序，
建立医患矛盾纠纷事件台账管理制度"; seed 000 to "建立工作台账，制定整改措施，逐项整改提高".
The ledger lists every case — open and closed, declined (不予受理) and settled on the
spot included — with fixed columns (acceptance check C15): case number, status,
channel, first-contact officer (首诉人), lead department, co-handling departments
(协办科室), category, subject (事由), received, due, replied, closed, on time (是/否/—),
outcome (处理结果), decline reason, satisfaction and rectification (整改) status.

处理结果 is what the complainant was told: the latest reply sent, or the note of a case
settled on the spot, after the officer's verdict at closing (已解决 / 未解决); for a
declined case, the notice saying why.

The complainant's name and phone number are never read here: no column, no
filter, no export (and they are purged after the retention period, complaints/
retention.py, while the ledger keeps the case). The description (投诉内容) is not a
column; the subject, a one-line 事由 of at most 120 characters, is, as hospitals keep it
in their paper ledgers.

Exports stream with flat memory: rows are read in keyset-paginated batches of
plain column tuples (never the ORM objects of the whole ledger) and written by
core.tabular — the CSV as a generator, the XLSX row by row into a temporary file
that is then streamed.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO, Any

from flask_babel import gettext
from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import aliased

from complaints.deadlines import overdue_sql, past_due
from complaints.models import (
    CaseDepartment,
    CaseRole,
    Category,
    Channel,
    Complaint,
    DeclineReason,
    Feedback,
    Rectification,
    RectificationStatus,
    Reply,
    ReplyStatus,
    Satisfaction,
    Status,
)
from core import tabular
from core.clock import local_date, local_day_bounds, local_timezone, local_today
from core.db import utcnow
from core.extensions import db
from organisation.models import Department, Institution, StaffUser

BATCH = 1000

SATISFIED_VALUES = (Satisfaction.SATISFIED, Satisfaction.BASICALLY)

# Statuses in which no answer is owed any more, so no deadline can be missed.
NO_DEADLINE = Status.values(Status.no_deadline())


def columns() -> list[str]:
    """The fixed ledger columns (C15), in order; the same for the page, the CSV and the XLSX."""
    return [gettext("案件编号"), gettext("状态"), gettext("投诉渠道"), gettext("首诉接待人"), gettext("主办科室"),
            gettext("协办科室"), gettext("投诉类别"), gettext("事由"), gettext("接收时间"), gettext("办理时限"),
            gettext("答复时间"), gettext("办结时间"), gettext("是否按时答复"), gettext("处理结果"),
            gettext("不予受理原因"), gettext("满意度"), gettext("整改状态")]


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
    """True: replied after the deadline, or still unanswered and overdue (complaints.deadlines.overdue_sql)."""
    return and_(Complaint.due_at.is_not(None), Complaint.status.not_in(NO_DEADLINE),
                Complaint.merged_into_id.is_(None),
                or_(and_(Complaint.replied_at.is_not(None), Complaint.replied_at > Complaint.due_at),
                    and_(Complaint.replied_at.is_(None), overdue_sql(now))))


def timeliness(*, status: str, due_at: datetime | None, replied_at: datetime | None,
               paused_since: datetime | None, merged: bool, now: datetime) -> bool | None:
    """The ledger's 是否按时答复 for one case, matching on_time_expr / overdue_expr: True, False or None (—)."""
    if due_at is None or status in NO_DEADLINE or merged:
        return None
    if replied_at is not None:
        return replied_at <= due_at
    if past_due(status, due_at, paused_since, now):
        return False
    return None  # still within its deadline (or its clock is paused)


# Filters ---------------------------------------------------------------------

STATUS_GROUPS = {"open": Status.values(Status.to_do()), "done": Status.values(Status.done())}


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
    co_departments: list[str]        # active co-handlers (协办), in the order they were added
    category: str
    subject: str                     # 事由
    received_at: datetime | None     # naive, in the hospital's time zone
    due: date | None
    replied_at: datetime | None
    closed_at: datetime | None
    on_time: bool | None
    outcome: str                     # 处理结果
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
        self.satisfaction = {m.value: str(m.label) for m in Satisfaction}
        self.yes, self.no = gettext("是"), gettext("否")
        self.joiner = gettext("、")

    def cells(self, row: LedgerRow) -> list[Any]:
        """The row as the exports write it: labels for codes, real dates, times to the minute."""
        return [row.case_number, self.status.get(row.status, row.status),
                self.channel.get(row.channel, row.channel), row.first_contact, row.lead_department,
                self.joiner.join(row.co_departments), row.category, row.subject,
                _minute(row.received_at), row.due, _minute(row.replied_at), _minute(row.closed_at),
                "—" if row.on_time is None else (self.yes if row.on_time else self.no), row.outcome,
                self.decline.get(row.decline_reason, row.decline_reason or ""),
                self.satisfaction.get(row.satisfaction, row.satisfaction or ""),
                self.rectification.get(row.rectification, row.rectification or "")]


def _minute(value: datetime | None) -> datetime | None:
    # A ledger records handling to the minute; seconds would only add noise to the columns.
    return value.replace(second=0, microsecond=0) if value else None


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
                   Complaint.merged_into_id, Complaint.decline_reason, satisfaction_expr(), rectification_expr(),
                   Complaint.subject, Complaint.resolved, Complaint.settlement_note, Complaint.decline_notice)
            .outerjoin(contact, contact.id == Complaint.first_contact_id)
            .outerjoin(Department, Department.id == Complaint.lead_department_id)
            .outerjoin(Category, Category.id == Complaint.category_id)
            .where(*where))


ORDER = (Complaint.received_at.desc(), Complaint.id.desc())


def _co_departments(ids: list[int]) -> dict[int, list[str]]:
    """The active co-handling departments (协办) of the cases ``ids``, in the order they were added."""
    found: dict[int, list[str]] = {}
    for complaint_id, name in db.session.execute(
            select(CaseDepartment.complaint_id, Department.name)
            .join(Department, Department.id == CaseDepartment.department_id)
            .where(CaseDepartment.complaint_id.in_(ids), CaseDepartment.role == CaseRole.CO.value,
                   CaseDepartment.active.is_(True))
            .order_by(CaseDepartment.complaint_id, CaseDepartment.id)):
        found.setdefault(complaint_id, []).append(name)
    return found


def _sent_replies(ids: list[int]) -> dict[int, str]:
    """The latest reply sent to the complainant of each case in ``ids``."""
    latest: dict[int, str] = {}
    for complaint_id, body in db.session.execute(
            select(Reply.complaint_id, Reply.body)
            .where(Reply.complaint_id.in_(ids), Reply.status == ReplyStatus.SENT.value)
            .order_by(Reply.complaint_id, Reply.number)):
        latest[complaint_id] = body  # the last one read is the latest number
    return latest


class _Outcome:
    """处理结果: the verdict at closing, then what the complainant was told (labels looked up once per batch)."""

    def __init__(self) -> None:
        self.resolved, self.unresolved = gettext("已解决"), gettext("未解决")
        self.pattern = gettext("%(verdict)s：%(text)s")

    def __call__(self, status: str, resolved: bool | None, settlement: str, notice: str, reply: str) -> str:
        if status == Status.DECLINED:
            return notice or ""
        if status == Status.SETTLED:
            verdict: str | None = self.unresolved if resolved is False else self.resolved
            text = settlement or ""
        else:
            verdict = None
            if status == Status.CLOSED and resolved is not None:
                verdict = self.resolved if resolved else self.unresolved
            text = reply
        if verdict and text:
            return self.pattern % {"verdict": verdict, "text": text}
        return verdict or text


def _materialise(raw: list[Any], now: datetime) -> list[LedgerRow]:
    """Turn raw tuples into rows: local times, the due day, the on-time verdict, co-handlers and the outcome."""
    tz = local_timezone()

    def local(value: datetime | None) -> datetime | None:
        return value.astimezone(tz).replace(tzinfo=None) if value else None

    ids = [r[0] for r in raw]
    co = _co_departments(ids) if ids else {}
    replies = _sent_replies(ids) if ids else {}
    outcome = _Outcome()
    rows = []
    for (cid, number, status, channel, contact, department, category, received, due_date, due_at, replied, closed,
         paused, merged, decline, satisfaction, rectification, subject, resolved, settlement, notice) in raw:
        # due_at is 24:00 of the due day, i.e. the next midnight: the day is the one just before it.
        due = due_date or (local_date(due_at - timedelta(microseconds=1)) if due_at else None)
        rows.append(LedgerRow(
            id=cid, case_number=number, status=status, channel=channel, first_contact=contact or "",
            lead_department=department or "", co_departments=co.get(cid, []), category=category or "",
            subject=subject or "", received_at=local(received), due=due,
            replied_at=local(replied), closed_at=local(closed),
            on_time=timeliness(status=status, due_at=due_at, replied_at=replied, paused_since=paused,
                               merged=merged is not None, now=now),
            outcome=outcome(status, resolved, settlement, notice, replies.get(cid, "")),
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

def sheet(rows: Iterable[LedgerRow]) -> tabular.Sheet:
    """The ledger as one table for core.tabular: the fixed columns, labels for codes, real dates to the minute."""
    labels = Labels()
    return tabular.Sheet(gettext("投诉台账"), columns(), (labels.cells(row) for row in rows))


def write_xlsx(rows: Iterable[LedgerRow]) -> tuple[IO[bytes], int]:
    """The ledger as an XLSX in an unlinked temporary file positioned at 0 (core.tabular); returns (file, rows)."""
    written = tabular.write_xlsx(sheet(rows))
    return written.file, written.rows[0]


def export_filename(institution: Institution, f: LedgerFilter, fmt: str) -> str:
    """A readable Chinese file name: 投诉台账-<short name>-<from>至<to>.<fmt>."""
    name = institution.short_name or institution.name
    span = ""
    if f.date_from or f.date_to:
        span = "-" + (f.date_from.isoformat() if f.date_from else "") + gettext("至") + (
            f.date_to.isoformat() if f.date_to else "")
    return f"{gettext('投诉台账')}-{name}{span}.{fmt}"


def ascii_filename(institution: Institution, fmt: str) -> str:
    return f"complaint-ledger-{institution.id}-{local_today():%Y%m%d}.{fmt}"
