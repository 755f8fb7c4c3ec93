"""Demo complaints: written with bulk inserts (COPY on PostgreSQL, executemany elsewhere), not through the services."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Table, func, select

from complaints.demo.simulation import Case, Office, link_duplicate
from complaints.models import (
    CaseCounter,
    CaseDepartment,
    CaseEvent,
    CasePause,
    Complaint,
    Feedback,
    Rectification,
    Refund,
    Reply,
)
from complaints.models.cases import complaint_concerned_department
from core.clock import local_date
from core.extensions import db

# Writing many rows fast ------------------------------------------------------------------

def _table(model_or_table: Any) -> Table:
    return getattr(model_or_table, "__table__", model_or_table)


def _defaults(table: Table) -> dict[str, Callable[[], Any]]:
    """Python-side column defaults (COPY bypasses them, so they are filled in here)."""
    found = {}
    for column in table.columns:
        default = column.default
        if default is None or column.primary_key:
            continue
        if default.is_callable:
            found[column.name] = (lambda d=default: d.arg(None))
        elif default.is_scalar:
            found[column.name] = (lambda v=default.arg: v)
    return found


def write_rows(model_or_table: Any, rows: list[dict[str, Any]], *, batch: int = 5000) -> int:
    """Insert plain dicts in bulk: COPY on PostgreSQL, executemany elsewhere. Python-side defaults are applied."""
    if not rows:
        return 0
    table = _table(model_or_table)
    defaults = _defaults(table)
    given = set().union(*(row.keys() for row in rows))
    names = [c.name for c in table.columns if c.name in given or c.name in defaults]

    def value(row: dict[str, Any], name: str) -> Any:
        if name in row:
            return row[name]
        return defaults[name]() if name in defaults else None

    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        columns = ", ".join(f'"{n}"' for n in names)
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        with raw.cursor() as cursor:
            with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row([json.dumps(value(row, n), ensure_ascii=False) if n in json_columns
                                    else value(row, n) for n in names])
        return len(rows)
    for start in range(0, len(rows), batch):
        db.session.execute(table.insert(), [{n: value(row, n) for n in names} for row in rows[start:start + batch]])
    return len(rows)


def _reserve_ids(count: int) -> list[int]:
    """Complaint ids for rows inserted with explicit ids (children need them first)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return list(db.session.scalars(db.text(
            "SELECT nextval(pg_get_serial_sequence('complaint', 'id')) FROM generate_series(1, :n)"), {"n": count}))
    start = (db.session.scalar(select(func.max(Complaint.id))) or 0) + 1
    return list(range(start, start + count))


def number_cases(office: Office, cases: list[Case]) -> None:
    """Case numbers in receipt order per year, continuing (and then moving) the intake's counters."""
    counters = {row.year: row for row in db.session.scalars(
        select(CaseCounter).where(CaseCounter.institution_id == office.institution.id))}
    last: dict[int, int] = {year: row.last_number for year, row in counters.items()}
    for case in sorted(cases, key=lambda c: c.values["received_at"]):
        year = local_date(case.values["received_at"]).year
        last[year] = last.get(year, 0) + 1
        case.values["case_number"] = f"{office.prefix}{year}-{last[year]:05d}"
    for year, number in last.items():
        if year in counters:
            counters[year].last_number = number
        else:
            db.session.add(CaseCounter(institution_id=office.institution.id, year=year, last_number=number))
    db.session.flush()


def write_cases(cases: list[Case]) -> int:
    """Insert simulated cases and everything that hangs off them."""
    if not cases:
        return 0
    ids = _reserve_ids(len(cases))
    children: dict[Any, list[dict[str, Any]]] = {CaseDepartment: [], CaseEvent: [], Reply: [], Feedback: [],
                                                 Rectification: [], Refund: [], CasePause: []}
    concerned = []
    for cid, case in zip(ids, cases, strict=True):
        case.values["id"] = cid
    for case in cases:
        link_duplicate(case)
    for case in cases:
        cid = case.values["id"]
        for model, rows in ((CaseDepartment, case.departments), (CaseEvent, case.events), (Reply, case.replies),
                            (Feedback, case.feedback), (Rectification, case.rectifications),
                            (Refund, case.refunds), (CasePause, case.pauses)):
            children[model].extend({**row, "complaint_id": cid} for row in rows)
        concerned.extend({"complaint_id": cid, "department_id": d} for d in dict.fromkeys(case.concerned))
    write_rows(Complaint, [c.values for c in cases])
    for model, rows in children.items():
        write_rows(model, rows)
    write_rows(complaint_concerned_department, concerned)
    db.session.flush()
    return len(cases)
