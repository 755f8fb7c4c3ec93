"""Demo complaints: a living complaint office for `flask seed-demo`.

bench/complaints.py reuses the simulation for its 100,000 cases.

Seed 004 asks for "一体化患者投诉服务中心 … 健全并落实患者投诉、接待、受理、处理、反馈制度，
规范处理程序，建立医患矛盾纠纷事件台账管理制度"; the demo fills that office with plausible
cases from every channel and category, in every status (a few duplicates merged into the case
they repeat among them), with their timeline, departments, replies, feedback, rectifications
(整改) and refunds, so that the queues, case pages, the ledger and the statistics have
something true-looking to show.

Cases are simulated one by one (receipt → acceptance → routing → reply draft → approval →
sending → closing → feedback, each step at a plausible working-hour time) and cut at
``now``: whatever would happen later has not happened yet, so recent cases are still open and
a few old ones are overdue, one of them never triaged. Deadlines are counted with
complaints.deadlines (the official calendar, the day of receipt not counted) from the receipt,
as the intake does: a case awaiting triage has its deadline too.

They are written with bulk inserts, not through the services (which audit and notify per
case): COPY on PostgreSQL, executemany elsewhere. Case numbers follow the intake's format
and the per-institution counters are moved past them, so that cases registered later keep
counting from there. Complainants are invented (names and phone numbers are not real).
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from complaints import calendar_data, feedback, tasks
from complaints import categories as category_service
from complaints.demo.simulation import (
    ACTOR,
    HOLD_RECENT,
    duplicate_of,
    office_for,
    pick_hold,
    received_times,
    simulate,
)
from complaints.demo.writing import number_cases, write_cases
from complaints.models import Complaint, Reply, ReplyStatus, Status
from core.db import utcnow
from core.extensions import db
from organisation.models import Institution


def seed_cases(n_per_institution: int = 300, seed: int = 2026, *, institutions: Iterable[Institution] | None = None,
               days: int = 200, now: datetime | None = None) -> int:
    """Demo cases for every active institution (a third as many for grassroots ones); returns how many."""
    now = now or utcnow()
    if institutions is None:
        institutions = db.session.scalars(select(Institution).where(Institution.active.is_(True))
                                          .order_by(Institution.id)).all()
    total = 0
    for institution in institutions:
        rng = random.Random(f"{seed}:{institution.registration_code}")
        office = office_for(institution)
        n = n_per_institution if institution.level != "grassroots" else max(n_per_institution // 3, 1)
        phones: list[str] = []
        # A third arrived in the last month: the demo office has work in hand, not only an archive.
        times = received_times(rng, n, days=days, now=now, recent_share=0.33)
        holds = [pick_hold(rng, at, now) for at in times]
        # Every status on show: recent cases stop at each open status once, the older the case the later its
        # status (three days cover a reply drafted soon; a case waiting to be accepted is the newest of them).
        # A small office may have fewer than one case a day: look further back until each status has a case.
        recent = [i for i, at in enumerate(times) if 1 <= (now - at).days <= 5]
        if len(recent) < len(HOLD_RECENT):
            recent = [i for i, at in enumerate(times) if 1 <= (now - at).days <= 14]
        recent.sort(key=lambda i: times[i], reverse=True)
        for k, status in enumerate(HOLD_RECENT):
            if recent:
                holds[recent[k * len(recent) // len(HOLD_RECENT)]] = status
        # A case nobody triaged for weeks: its clock ran from receipt, so the queue counts it as overdue.
        forgotten = [i for i, at in enumerate(times) if 16 <= (now - at).days <= 24]
        if forgotten:
            holds[forgotten[0]] = Status.REGISTERED.value
        older = [i for i, at in enumerate(times) if 14 <= (now - at).days <= 24]
        if older:
            holds[older[len(older) // 2]] = Status.REOPENED.value
        cases = [simulate(rng, office, at, now, phones=phones, hold=hold)
                 for at, hold in zip(times, holds, strict=True)]
        # A few matters registered twice, the second merged into the first (已合并), among the recent open cases.
        open_now = [c for c in cases if c.values["status"] in Status.values(Status.to_do())
                    and (now - c.values["received_at"]).days <= 20]
        twins = [duplicate_of(rng, office, c, now) for c in rng.sample(open_now, min(2, len(open_now)))]
        cases += [c for c in twins if c is not None]
        number_cases(office, cases)
        total += write_cases(cases)
    return total


def send_demo_notices(per_department: int = 3) -> int:
    """The notices a working office has in its staff's lists, sent by the jobs that send them: each lead
    department's newest open cases, the 重办 requests and the replies waiting for review. Returns how many.

    The bulk-written cases notified nobody; without this a handler trying the demo finds an empty list.
    The jobs commit as they go, so this runs last.
    """
    sent = 0
    for institution in db.session.scalars(select(Institution).where(Institution.active.is_(True))
                                          .order_by(Institution.id)).all():
        newest = db.session.execute(
            select(Complaint.id, Complaint.lead_department_id).where(
                Complaint.institution_id == institution.id, Complaint.lead_department_id.is_not(None),
                # (a reopened case's department was told by the 重办 notice, not as a new case)
                Complaint.status.in_([Status.IN_HANDLING.value, Status.TRANSFERRED.value]),
                Complaint.reopened_count == 0)
            .order_by(Complaint.received_at.desc())).all()
        per_lead: dict[int, int] = {}
        for complaint_id, lead_id in newest:
            if per_lead.get(lead_id, 0) < per_department:
                per_lead[lead_id] = per_lead.get(lead_id, 0) + 1
                sent += bool(tasks.notify_department(complaint_id, lead_id))
        for fb, _case in feedback.reopen_requests(institution):
            sent += tasks.notify_reopen_request(fb.id)
        for reply_id in db.session.scalars(select(Reply.id).join(Complaint, Complaint.id == Reply.complaint_id).where(
                Complaint.institution_id == institution.id, Reply.status == ReplyStatus.SUBMITTED)):
            sent += bool(tasks.notify_reply_review(reply_id))
        # The deadline sweep's reminders and 督办 (case by case: the demo may be loaded on a day it skips).
        for complaint_id in db.session.scalars(select(Complaint.id).where(
                Complaint.institution_id == institution.id, Complaint.status.in_(Status.values(Status.to_do())))
                .order_by(Complaint.id)).all():
            sent += tasks.escalate_case(complaint_id) or tasks.remind_case(complaint_id)
    return sent


def seed_demo() -> None:
    """`flask seed-demo`: the working-day calendar, the national categories, a few hundred cases per hospital,
    and the notices their staff would have been sent."""
    calendar_data.seed_from_chinesecalendar(actor="demo")
    category_service.default_categories(actor=ACTOR)
    seed_cases()
    send_demo_notices()
