"""Monthly and quarterly complaint statistics, for one institution and across a region.

Seed 004: "健全并落实患者投诉、接待、受理、处理、反馈制度"; seed 002: "加强回访结果的管理，
做好统计分析和结果应用"; seed 001 asks for a monthly report "于每月4日前将上一月份…工作进展
情况…报送". The 12345 statutes appraise units on "响应率、解决率、满意率" (北京接诉即办条例
第32条); the hospital rules (医疗机构投诉管理办法) ask that complaint statistics feed quality
management.

Definitions (口径) — also shown on the page in the 口径说明 box:

* **Cohort.** Every figure of a period counts the cases *received* in that period
  (Asia/Shanghai calendar days), with their status as of now, so that each figure
  can be recounted by hand from the ledger filtered on the same dates. Cases merged
  into another case are left out (the surviving case counts once).
* **Declined (不予受理)** cases are counted and listed, but left out of every rate's
  denominator (acceptance check C11).
* **Accepted (受理)**: every case of the cohort except those declined and those
  still only registered (not yet triaged). Settled on the spot (当场办结) counts as
  accepted.
* **响应率** (response rate) = accepted cases with a first response by the deadline /
  accepted cases. The first response is ``first_response_at``, else the sent reply,
  else (for a case settled on the spot) the settlement; a case without a deadline
  that has a response counts as responded in time.
* **解决率** (resolution rate) = closed cases judged resolved / closed cases. Closed
  means 已办结 or 当场办结; a case settled on the spot is resolved unless the officer
  recorded otherwise.
* **满意率** (satisfaction rate) = answers 满意 + 基本满意 / feedback answered (the
  complainant's one-question feedback after closing).
* **按时答复率** (on-time reply rate) = cases replied on or before their deadline /
  cases whose timeliness is decided: replied (on time or late) or still unanswered
  after the deadline. Cases still within their deadline, paused cases and cases
  without a deadline (当场办结) are not counted. It equals the ledger's 是 / (是 + 否).
* **Median handling time**: working days (Chinese official calendar; the day of
  receipt not counted, as the Civil Code art. 201 counts periods) from receipt to
  closing, over closed cases.
* **Repeat complainants**: the same phone number on two or more cases of the
  period. Numbers are compared as keyed hashes and never shown.
* **Top causes**: categories by number of cases, and topic words (a fixed list)
  found in the cases' subjects.

Rates computed from fewer than ``SMALL_SAMPLE`` cases are flagged: read them with care.
"""
from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext
from sqlalchemy import and_, case, func, or_, select

from complaints.ledger import (
    SATISFIED_VALUES,
    on_time_expr,
    overdue_expr,
    satisfaction_expr,
)
from complaints.models import Category, Channel, Complaint, DeclineReason, Status
from complaints.workdays import working_days_between
from core.clock import local_date, local_day_bounds, local_today
from core.db import utcnow
from core.extensions import db
from core.signing import hash_value
from organisation.models import Department, Institution, InstitutionCategory, InstitutionLevel

SMALL_SAMPLE = 10
CLOSED_VALUES = Status.values(Status.done())  # 解决率's closed cases: 已办结 or 当场办结

# Topic words counted in subjects: what patients complain about, in their words.
TOPIC_WORDS = ("态度", "排队", "等候", "等待", "收费", "退费", "费用", "检查", "预约", "挂号", "停车", "卫生", "饭菜",
               "膳食", "沟通", "解释", "诊断", "误诊", "手术", "护理", "输液", "药", "隐私", "推诿", "插队", "环境",
               "噪音", "投诉", "报告", "床位", "电梯", "厕所", "空调", "安全", "红包", "回扣", "医保", "住院", "出院",
               "急诊", "夜间", "服务")


class PeriodError(ValueError):
    """A period string that is not a month (2026-10) or a quarter (2026Q4); the message is for the user."""


_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")


@dataclass(frozen=True)
class Period:
    kind: str       # "month" | "quarter"
    year: int
    number: int     # month 1-12 or quarter 1-4

    @property
    def start(self) -> date:
        month = self.number if self.kind == "month" else 3 * self.number - 2
        return date(self.year, month, 1)

    @property
    def end(self) -> date:
        """The first day after the period."""
        months = 1 if self.kind == "month" else 3
        month = self.start.month + months
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def code(self) -> str:
        return f"{self.year}-{self.number:02d}" if self.kind == "month" else f"{self.year}Q{self.number}"

    @property
    def label(self) -> str:
        if self.kind == "month":
            return gettext("%(y)d 年 %(m)d 月", y=self.year, m=self.number)
        return gettext("%(y)d 年第 %(q)d 季度", y=self.year, q=self.number)

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes in the hospitals' time zone."""
        return local_day_bounds(self.start)[0], local_day_bounds(self.end)[0]

    def shifted(self, steps: int) -> Period:
        size = 12 if self.kind == "month" else 4
        index = self.year * size + self.number - 1 + steps
        return Period(self.kind, index // size, index % size + 1)

    def other_kind(self) -> Period:
        """The quarter this month falls in, or the quarter's first month."""
        if self.kind == "month":
            return Period("quarter", self.year, (self.number - 1) // 3 + 1)
        return Period("month", self.year, 3 * self.number - 2)


def parse_period(text: str | None, *, today: date | None = None) -> Period:
    """'2026-10' or '2026Q4'; empty means the current month. Raises PeriodError for anything else."""
    if not text:
        today = today or local_today()
        return Period("month", today.year, today.month)
    text = text.strip()
    for pattern, kind, top in ((_MONTH, "month", 12), (_QUARTER, "quarter", 4)):
        match = pattern.match(text)
        if match:
            year, number = int(match.group(1)), int(match.group(2))
            if 2000 <= year <= 2100 and 1 <= number <= top:
                return Period(kind, year, number)
    raise PeriodError(gettext("统计期间“%(text)s”无效：请填写月份（如 2026-10）或季度（如 2026Q4）。",
                              text=text[:20]))


# Rates -----------------------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def small(self) -> bool:
        return 0 < self.denominator < SMALL_SAMPLE

    def __str__(self) -> str:
        return "—" if self.value is None else f"{self.value * 100:.1f}%"


@dataclass
class Summary:
    """The counts and rates of one institution's cohort (cases received in the period)."""

    institution_id: int
    received: int = 0
    declined: int = 0
    registered: int = 0
    accepted: int = 0
    settled: int = 0
    closed: int = 0
    open: int = 0
    response: Rate = Rate(0, 0)
    resolution: Rate = Rate(0, 0)
    satisfaction: Rate = Rate(0, 0)
    on_time: Rate = Rate(0, 0)
    median_days: float | None = None
    handled: int = 0              # closed cases the median is taken over


def _cohort(institution_ids: Iterable[int], period: Period) -> list[Any]:
    start, end = period.bounds()
    return [Complaint.institution_id.in_(list(institution_ids)), Complaint.received_at >= start,
            Complaint.received_at < end, Complaint.merged_into_id.is_(None)]


def _response_at():
    settled_at = case((Complaint.status == Status.SETTLED.value,
                       func.coalesce(Complaint.closed_at, Complaint.received_at)))
    return func.coalesce(Complaint.first_response_at, Complaint.replied_at, settled_at)


def summaries(institution_ids: Iterable[int], period: Period, *, now: datetime | None = None) -> dict[int, Summary]:
    """Counts and rates per institution for ``period`` (one grouped query, plus one for the medians)."""
    ids = list(institution_ids)
    if not ids:
        return {}
    now = now or utcnow()
    status = Complaint.status
    declined = status == Status.DECLINED.value
    accepted = status.not_in([Status.DECLINED.value, Status.REGISTERED.value])
    closed = status.in_(CLOSED_VALUES)
    response_at = _response_at()
    responded = and_(accepted, response_at.is_not(None),
                     or_(Complaint.due_at.is_(None), response_at <= Complaint.due_at))
    resolved = and_(closed, or_(Complaint.resolved.is_(True),
                                and_(status == Status.SETTLED.value, Complaint.resolved.is_(None))))
    sat = satisfaction_expr()
    answered = and_(~declined, sat.is_not(None))
    satisfied = and_(~declined, sat.in_(SATISFIED_VALUES))
    on_time = on_time_expr()
    late = overdue_expr(now)

    def n(condition):
        return func.count().filter(condition)

    stmt = (select(Complaint.institution_id, func.count(), n(declined),
                   n(status == Status.REGISTERED.value), n(accepted), n(status == Status.SETTLED.value), n(closed),
                   n(responded), n(resolved), n(answered), n(satisfied), n(on_time), n(late))
            .where(*_cohort(ids, period)).group_by(Complaint.institution_id))
    result = {i: Summary(i) for i in ids}
    for (iid, received, n_declined, n_registered, n_accepted, n_settled, n_closed, n_responded, n_resolved,
         n_answered, n_satisfied, n_on_time, n_late) in db.session.execute(stmt):
        result[iid] = Summary(
            iid, received=received, declined=n_declined, registered=n_registered, accepted=n_accepted,
            settled=n_settled, closed=n_closed, open=received - n_declined - n_registered - n_closed,
            response=Rate(n_responded, n_accepted), resolution=Rate(n_resolved, n_closed),
            satisfaction=Rate(n_satisfied, n_answered), on_time=Rate(n_on_time, n_on_time + n_late))
    for iid, days in _handling_days(ids, period).items():
        result[iid].median_days = statistics.median(days)
        result[iid].handled = len(days)
    return result


def _handling_days(ids: list[int], period: Period) -> dict[int, list[int]]:
    stmt = (select(Complaint.institution_id, Complaint.received_at, Complaint.closed_at)
            .where(*_cohort(ids, period), Complaint.status.in_(CLOSED_VALUES)))
    counted: dict[tuple[date, date], int] = {}
    days: dict[int, list[int]] = defaultdict(list)
    for iid, received, closed in db.session.execute(stmt):
        start, end = local_date(received), local_date(closed or received)
        key = (start, end)
        if key not in counted:  # many cases share the same pair of days: count each pair once
            counted[key] = working_days_between(start, end)
        days[iid].append(counted[key])
    return days


# One institution's report ---------------------------------------------------------

@dataclass
class Report:
    institution: Institution
    period: Period
    summary: Summary
    by_category: list[tuple[str, int]] = field(default_factory=list)
    by_department: list[tuple[str, int]] = field(default_factory=list)
    by_channel: list[tuple[str, int]] = field(default_factory=list)
    by_status: list[tuple[str, int]] = field(default_factory=list)
    declined_cases: list[tuple[int, str, str]] = field(default_factory=list)   # id, case number, reason label
    decline_reasons: list[tuple[str, int]] = field(default_factory=list)
    repeat_complainants: list[tuple[str, list[str]]] = field(default_factory=list)  # hash token, case numbers
    topic_words: list[tuple[str, int]] = field(default_factory=list)

    @property
    def repeat_cases(self) -> int:
        return sum(len(numbers) for _token, numbers in self.repeat_complainants)


def report(institution: Institution, period: Period, *, now: datetime | None = None) -> Report:
    """Everything the statistics page shows for one institution and period."""
    now = now or utcnow()
    cohort = _cohort([institution.id], period)
    result = Report(institution, period, summaries([institution.id], period, now=now)[institution.id])
    unnamed = gettext("（未分类）")
    result.by_category = _counts(select(Category.name, func.count()).select_from(Complaint)
                                 .outerjoin(Category, Category.id == Complaint.category_id)
                                 .where(*cohort).group_by(Category.name), unnamed)
    result.by_department = _counts(select(Department.name, func.count()).select_from(Complaint)
                                   .outerjoin(Department, Department.id == Complaint.lead_department_id)
                                   .where(*cohort).group_by(Department.name), gettext("（未分派）"))
    result.by_channel = [(_label(Channel, c), n) for c, n in _counts(
        select(Complaint.channel, func.count()).where(*cohort).group_by(Complaint.channel), "")]
    result.by_status = [(_label(Status, s), n) for s, n in _counts(
        select(Complaint.status, func.count()).where(*cohort).group_by(Complaint.status), "")]
    declined = db.session.execute(
        select(Complaint.id, Complaint.case_number, Complaint.decline_reason)
        .where(*cohort, Complaint.status == Status.DECLINED.value).order_by(Complaint.received_at)).all()
    result.declined_cases = [(cid, number, _label(DeclineReason, reason) if reason else "")
                             for cid, number, reason in declined]
    result.decline_reasons = Counter(label for _i, _n, label in result.declined_cases).most_common()
    result.repeat_complainants = repeat_complainants(cohort)
    result.topic_words = topic_words(db.session.scalars(select(Complaint.subject).where(*cohort)))
    return result


def _counts(stmt, missing: str) -> list[tuple[str, int]]:
    rows = [(name if name is not None else missing, n) for name, n in db.session.execute(stmt)]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def _label(enum: Any, value: str) -> str:
    try:
        return str(enum(value).label)
    except ValueError:
        return value


def phone_token(phone: str) -> str:
    """A short keyed hash of a phone number's digits (core.signing): equal numbers give equal tokens; the number is
    not shown. Only a grouping key within one report."""
    digits = re.sub(r"\D", "", phone)[-11:]
    return hash_value("complainant-phone", digits)[:8]


def repeat_complainants(cohort: list[Any]) -> list[tuple[str, list[str]]]:
    """Phone numbers (as tokens) on two or more cases of the cohort, with those cases' numbers."""
    cases: dict[str, list[str]] = defaultdict(list)
    for phone, number in db.session.execute(
            select(Complaint.complainant_phone, Complaint.case_number)
            .where(*cohort, Complaint.complainant_phone.is_not(None), Complaint.complainant_phone != "")
            .order_by(Complaint.received_at)):
        if re.sub(r"\D", "", phone):
            cases[phone_token(phone)].append(number)
    repeated = [(token, numbers) for token, numbers in cases.items() if len(numbers) > 1]
    return sorted(repeated, key=lambda r: (-len(r[1]), r[1][0]))


def topic_words(subjects: Iterable[str], *, top: int = 10) -> list[tuple[str, int]]:
    """TOPIC_WORDS by the number of subjects they appear in."""
    counts: Counter[str] = Counter()
    for subject in subjects:
        for word in TOPIC_WORDS:
            if word in (subject or ""):
                counts[word] += 1
    return counts.most_common(top)


# Regional comparison ------------------------------------------------------------

@dataclass
class PeerGroup:
    level: str
    category: str
    rows: list[tuple[Institution, Summary]]


def compare(institutions: list[Institution], period: Period, *, now: datetime | None = None) -> list[PeerGroup]:
    """The institutions' summaries side by side, grouped by peer class (level, category): no personal data."""
    by_id = summaries([i.id for i in institutions], period, now=now)
    levels = [level.value for level in InstitutionLevel]          # 三级 first, 基层 last
    categories = [category.value for category in InstitutionCategory]

    def rank(institution: Institution) -> tuple[int, int, str]:
        level, category = institution.peer_class
        return (levels.index(level), categories.index(category), institution.name)

    groups: dict[tuple[str, str], list[tuple[Institution, Summary]]] = defaultdict(list)
    for institution in sorted(institutions, key=rank):
        groups[institution.peer_class].append((institution, by_id[institution.id]))
    return [PeerGroup(level, category, rows) for (level, category), rows in groups.items()]
