"""The queues: open cases of an institution or a handler's departments, filtered, most urgent first.

The answer clock runs from receipt, so the deadline filters and counts (overdue, due within N
working days) take the cases awaiting triage too; triage has its own target
(ComplaintSettings.triage_days), counted and filtered as ``triage_late``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import and_, bindparam, case, func, literal_column, or_, select, true
from sqlalchemy.orm import load_only

from complaints.deadlines import due_threshold, overdue_sql, triage_late_sql
from complaints.models import (
    CaseDepartment,
    Complaint,
    Status,
)
from complaints.settings import complaint_settings
from core.db import utcnow
from core.extensions import db
from organisation.models import Institution

# Queues ----------------------------------------------------------------------------

OPEN_VALUES = Status.values(Status.open_statuses())
QUEUE_VALUES = Status.values(Status.to_do())  # what is still to do, triage included


@dataclass
class QueueFilter:
    """What the officer's or a handler's queue shows; every field optional."""

    status: str | None = None            # one status, or None for every open case
    category_id: int | None = None
    department_id: int | None = None     # lead or co-handling
    channel: str | None = None
    overdue: bool = False
    due_within: int | None = None        # working days from today
    emergency: bool = False
    paused: bool = False
    triage_late: bool = False            # awaiting triage beyond the institution's triage target
    q: str = ""
    departments: set[int] | None = None  # a handler's departments (lead or co); None = the whole institution
    now: datetime = field(default_factory=utcnow)


def status_in(values: Iterable[str]):
    """``status IN ('a', 'b' …)`` with the values written into the SQL, not bound.

    Bound values hide them from PostgreSQL's planner once psycopg prepares the statement (after
    a few runs), and then it cannot prove that the query matches the partial index of open cases
    (ix_complaint_open_due): the queue fell from 0.3 ms to 90 ms at 100,000 cases.
    """
    return Complaint.status.in_(bindparam("statuses", list(values), expanding=True, literal_execute=True,
                                          unique=True))


def _in_departments(ids: Iterable[int]):
    """Led or co-handled by one of ``ids``; the co-handling test reads the partial index ix_complaint_department_co
    (its predicate is written literally, as for status_in)."""
    ids = list(ids)
    co = select(CaseDepartment.complaint_id).where(
        CaseDepartment.department_id.in_(ids), CaseDepartment.role == literal_column("'co'"), CaseDepartment.active)
    return or_(Complaint.lead_department_id.in_(ids), Complaint.id.in_(co))


def queue_statement(institution: Institution, f: QueueFilter):
    """Open cases of an institution, filtered, most urgent first: index-friendly (ix_complaint_open_due)."""
    stmt = select(Complaint).where(Complaint.institution_id == institution.id)
    if f.status == Status.REGISTERED.value or (f.triage_late and not f.status):
        stmt = stmt.where(status_in([Status.REGISTERED.value])).order_by(Complaint.received_at, Complaint.id)
    else:
        if f.status in OPEN_VALUES or f.status == Status.REPLIED.value:
            stmt = stmt.where(status_in([f.status]))
        elif f.overdue or f.due_within is not None or (f.q or "").strip():
            # A deadline runs for the cases awaiting triage too: they are overdue or due soon like the others;
            # and a search finds a case however new it is.
            stmt = stmt.where(status_in(QUEUE_VALUES))
        else:
            # The same IN list as the partial index's predicate, so the planner may read it in due order.
            stmt = stmt.where(status_in(OPEN_VALUES))
        stmt = stmt.order_by(Complaint.due_at.asc().nulls_last(), Complaint.id)
    if f.triage_late:
        stmt = stmt.where(triage_late_sql(complaint_settings(institution.id).triage_days, f.now))
    if f.category_id:
        stmt = stmt.where(Complaint.category_id == f.category_id)
    if f.channel:
        stmt = stmt.where(Complaint.channel == f.channel)
    if f.emergency:
        stmt = stmt.where(Complaint.safety_emergency.is_(True))
    if f.paused:
        stmt = stmt.where(Complaint.paused_since.is_not(None))
    if f.overdue:
        stmt = stmt.where(overdue_sql(f.now, statuses=true()))  # the statuses are chosen above
    if f.due_within is not None:
        stmt = stmt.where(Complaint.due_date <= due_threshold(f.due_within, f.now), Complaint.due_at > f.now)
    if f.department_id:
        stmt = stmt.where(_in_departments([f.department_id]))
    if f.departments is not None:
        stmt = stmt.where(_in_departments(f.departments))
    q = (f.q or "").strip()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
        stmt = stmt.where(or_(Complaint.case_number.ilike(like, escape="\\"),
                              Complaint.subject.ilike(like, escape="\\")))
    return stmt.options(load_only(
        Complaint.id, Complaint.institution_id, Complaint.case_number, Complaint.subject, Complaint.channel,
        Complaint.received_at, Complaint.category_id, Complaint.complainant_name, Complaint.status,
        Complaint.lead_department_id, Complaint.safety_emergency, Complaint.due_at, Complaint.due_date,
        Complaint.deadline_provisional, Complaint.paused_since, Complaint.version, raiseload=True))


def queue_counts(institution: Institution, *, departments: set[int] | None = None, now: datetime | None = None,
                 near_days: int = 1) -> dict[str, int]:
    """The queue's headline numbers in one grouped query: open, overdue, due soon, emergencies, paused, to triage,
    and to triage past the triage target. Overdue and due soon count the cases awaiting triage too."""
    now = now or utcnow()
    near = due_threshold(near_days, now)
    is_open = status_in(OPEN_VALUES)
    registered = status_in([Status.REGISTERED.value])
    running = Complaint.paused_since.is_(None)  # every row is still to do (the WHERE below)

    def count(cond):
        return func.count(case((cond, 1)))

    stmt = select(
        count(is_open).label("open"),
        count(overdue_sql(now, statuses=true())).label("overdue"),
        count(and_(running, Complaint.due_at > now, Complaint.due_date <= near)).label("near"),
        count(and_(is_open, Complaint.safety_emergency.is_(True))).label("emergency"),
        count(and_(is_open, Complaint.paused_since.is_not(None))).label("paused"),
        count(registered).label("registered"),
        count(triage_late_sql(complaint_settings(institution.id).triage_days, now, statuses=registered))
        .label("triage_late"),
    ).where(Complaint.institution_id == institution.id, status_in(QUEUE_VALUES))
    if departments is not None:
        stmt = stmt.where(_in_departments(departments))
    return dict(db.session.execute(stmt).one()._mapping)


def urgency(complaint: Complaint, *, now: datetime, near: date) -> str:
    """overdue | near | paused | ok | none — the row's highlighting in the queues."""
    if complaint.paused_since is not None:
        return "paused"
    if complaint.due_at is None or complaint.due_date is None:
        return "none"
    if now >= complaint.due_at:
        return "overdue"
    if complaint.due_date <= near:
        return "near"
    return "ok"


# What waits on one person (the home page's to-do list, complaints.views_queues.todo) ----------------

def status_counts(institution: Institution, statuses: Iterable[Status], *,
                  led_by: set[int] | None = None) -> dict[Status, int]:
    """How many cases of the institution stand in each of ``statuses`` (led by one of ``led_by``, if given)."""
    wanted = list(statuses)
    stmt = (select(Complaint.status, func.count()).where(Complaint.institution_id == institution.id,
                                                          status_in(Status.values(wanted)))
            .group_by(Complaint.status))
    if led_by is not None:
        stmt = stmt.where(Complaint.lead_department_id.in_(led_by or {-1}))
    found = {Status(status): n for status, n in db.session.execute(stmt)}
    return {status: found.get(status, 0) for status in wanted}


def led_cases(institution: Institution, departments: set[int], status: Status, *, limit: int = 5) -> list[Complaint]:
    """Cases in ``status`` that one of ``departments`` leads, the one due first first."""
    return list(db.session.scalars(
        select(Complaint).where(Complaint.institution_id == institution.id, status_in([status.value]),
                                Complaint.lead_department_id.in_(departments or {-1}))
        .order_by(Complaint.due_at.asc().nulls_last(), Complaint.id).limit(limit)))


def co_answers_missing(institution: Institution, departments: set[int]) -> list[tuple[CaseDepartment, Complaint]]:
    """Open cases on which one of ``departments`` co-handles and has neither answered nor been waived."""
    return list(db.session.execute(
        select(CaseDepartment, Complaint).join(Complaint, Complaint.id == CaseDepartment.complaint_id)
        .where(Complaint.institution_id == institution.id, status_in(OPEN_VALUES),
               CaseDepartment.department_id.in_(departments or {-1}), CaseDepartment.role == literal_column("'co'"),
               CaseDepartment.active, CaseDepartment.answered_at.is_(None), CaseDepartment.waived_at.is_(None))
        .order_by(CaseDepartment.due_at.asc().nulls_last(), Complaint.id)).tuples())
