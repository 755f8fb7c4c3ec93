"""Reminders and escalation (督办): check C8, once per due date, safe to run twice, never while paused."""
from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from complaints import deadlines, pauses, routing, tasks, triage
from complaints.models import CaseEvent, ComplaintSettings, PauseReason
from core.audit import AuditEntry
from core.extensions import db
from tests.complaints.conftest import department
from tests.factories import demo_user

BEIJING = ZoneInfo("Asia/Shanghai")


def at(y, m, d, hh=9, mm=0) -> str:
    """A Beijing wall-clock time, as the ISO string a job receives."""
    return datetime(y, m, d, hh, mm, tzinfo=BEIJING).astimezone(UTC).isoformat()


@pytest.fixture
def c8_case(make_case, calendar_2026, rmyy):
    """Check C1/C8's case: received Wed 2026-09-30 17:00, accepted, led by 心血管内科; due Tue 10-13."""
    officer = demo_user("rmyy-officer")
    case = make_case(received_at=datetime(2026, 9, 30, 9, 0, tzinfo=UTC))
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    db.session.flush()
    assert case.due_date == date(2026, 10, 13)
    return case


def timeline(case, action) -> list[CaseEvent]:
    return list(db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == case.id,
                                                           CaseEvent.action == action)))


def sent(outbox, kind):
    return [m for m in outbox if m.kind == kind]


def test_check_c8_reminder_on_the_12th_overdue_after_the_13th_and_escalation_on_the_15th(c8_case, outbox):
    # Sat 10-10 is a make-up workday, but the due day is two working days away: no reminder yet.
    assert tasks.sweep_deadlines(at(2026, 10, 10)) == {"reminded": 0, "escalated": 0}
    assert tasks.sweep_deadlines(at(2026, 10, 11)) == {"reminded": 0, "escalated": 0}   # Sunday: no sweep

    assert tasks.sweep_deadlines(at(2026, 10, 12)) == {"reminded": 1, "escalated": 0}
    reminder, = sent(outbox, "complaint_reminder")
    assert reminder.recipients == ["rmyy-handler"]
    assert "2026-10-13" in reminder.subject and c8_case.case_number in reminder.subject
    assert c8_case.reminded_for == date(2026, 10, 13)

    # The due day: still in time until 24:00.
    assert tasks.sweep_deadlines(at(2026, 10, 13, 23, 50)) == {"reminded": 0, "escalated": 0}
    assert not deadlines.is_overdue(c8_case, datetime.fromisoformat(at(2026, 10, 13, 23, 59)))
    assert deadlines.is_overdue(c8_case, datetime.fromisoformat(at(2026, 10, 14, 0, 0)))

    # The first overdue working day is the department's last chance; 督办 the next working day.
    assert tasks.sweep_deadlines(at(2026, 10, 14, 17)) == {"reminded": 0, "escalated": 0}
    assert tasks.sweep_deadlines(at(2026, 10, 15)) == {"reminded": 0, "escalated": 1}
    escalation, = sent(outbox, "complaint_escalation")
    assert set(escalation.recipients) == {"rmyy-officer", "rmyy-leader", "rmyy-handler"}
    assert "督办" in escalation.subject and "已超期 2 个工作日" in escalation.subject   # 10-14 and 10-15
    assert c8_case.escalated_for == date(2026, 10, 13)
    supervise, = timeline(c8_case, "supervise")
    assert supervise.actor_id is None and "督办" in supervise.note
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "complaint.supervise",
                                                             AuditEntry.target_id == str(c8_case.id)))


def test_running_the_jobs_twice_reminds_and_escalates_once(c8_case, outbox):
    assert tasks.remind_case(c8_case.id, at(2026, 10, 12)) is True
    assert tasks.remind_case(c8_case.id, at(2026, 10, 12, 10)) is False
    assert tasks.sweep_deadlines(at(2026, 10, 12, 15)) == {"reminded": 0, "escalated": 0}
    assert tasks.escalate_case(c8_case.id, at(2026, 10, 15)) is True
    assert tasks.escalate_case(c8_case.id, at(2026, 10, 16)) is False
    assert tasks.sweep_deadlines(at(2026, 10, 16)) == {"reminded": 0, "escalated": 0}
    assert len(sent(outbox, "complaint_reminder")) == 1 and len(sent(outbox, "complaint_escalation")) == 1
    assert len(timeline(c8_case, "remind")) == 1 and len(timeline(c8_case, "supervise")) == 1


def test_a_reminder_does_not_make_an_open_page_stale(c8_case):
    version = c8_case.version
    assert tasks.remind_case(c8_case.id, at(2026, 10, 12)) is True
    db.session.refresh(c8_case)
    assert c8_case.version == version
    pauses.request_extension(c8_case, 2, "等待检查结果", actor=demo_user("rmyy-handler"), expected_version=version)


def test_a_moved_due_date_earns_a_new_reminder(c8_case, outbox):
    assert tasks.remind_case(c8_case.id, at(2026, 10, 12)) is True
    ext = pauses.request_extension(c8_case, 2, "需要调取监控录像", actor=demo_user("rmyy-handler"))
    pauses.decide_extension(ext, True, "", actor=demo_user("rmyy-officer"))
    db.session.flush()
    assert c8_case.due_date == date(2026, 10, 15)

    assert tasks.sweep_deadlines(at(2026, 10, 13)) == {"reminded": 0, "escalated": 0}
    assert tasks.sweep_deadlines(at(2026, 10, 14)) == {"reminded": 1, "escalated": 0}
    assert [m.meta["due_date"] for m in sent(outbox, "complaint_reminder")] == ["2026-10-13", "2026-10-15"]


def test_a_paused_case_is_neither_reminded_nor_escalated(c8_case, outbox):
    pauses.pause_clock(c8_case, PauseReason.EXPERT_ASSESSMENT, actor=demo_user("rmyy-officer"),
                         at=datetime.fromisoformat(at(2026, 10, 9)))
    db.session.flush()
    assert tasks.sweep_deadlines(at(2026, 10, 12)) == {"reminded": 0, "escalated": 0}
    assert tasks.sweep_deadlines(at(2026, 10, 15)) == {"reminded": 0, "escalated": 0}
    assert outbox == []


def test_escalate_after_days_delays_the_escalation(c8_case, rmyy, outbox):
    db.session.add(ComplaintSettings(institution_id=rmyy.id, standard_days=5, complex_days=10, reminder_days_before=2,
                                     escalate_after_days=2, case_prefix="TS", feedback_valid_days=7))
    db.session.flush()
    assert tasks.sweep_deadlines(at(2026, 10, 10)) == {"reminded": 1, "escalated": 0}   # two working days ahead
    assert tasks.sweep_deadlines(at(2026, 10, 15))["escalated"] == 0
    assert tasks.sweep_deadlines(at(2026, 10, 16))["escalated"] == 0
    assert tasks.sweep_deadlines(at(2026, 10, 19))["escalated"] == 1                    # Mon, 4th working day after


def test_when_the_first_contact_has_left_the_escalation_goes_to_the_officers(make_case, calendar_2026, rmyy, outbox):
    from complaints.models import Channel
    from organisation.models import Role
    from tests.factories import make_staff

    temp = make_staff([Role.COMPLAINT_OFFICER], rmyy, username="temp-officer")
    case = make_case(received_at=datetime(2026, 9, 30, 9, 0, tzinfo=UTC), channel=Channel.SELF_SERVICE,
                     first_contact=None, actor="patient")
    triage.accept_complaint(case, actor=temp)
    assert case.first_contact_id == temp.id            # the officer who triaged a self-service complaint
    temp.active = False
    db.session.flush()
    assert tasks.escalate_case(case.id, at(2026, 10, 15)) is True
    escalation, = sent(outbox, "complaint_escalation")
    assert set(escalation.recipients) == {"rmyy-officer", "rmyy-leader"}    # no lead department yet


def test_the_deadline_sweep_is_registered_as_a_periodic_job(app):
    from core.tasks import periodic_jobs

    job = next(j for j in periodic_jobs(app) if j.name == "complaints-deadlines")
    assert job.func is tasks.sweep_deadlines and job.cron


def test_the_jobs_run_in_a_worker_without_a_request(c8_case, app, outbox):
    """RQ workers push an app context only: no request, no session, no browser locale."""
    import threading

    from flask import has_request_context

    case_id, lead = c8_case.id, c8_case.lead_department_id
    db.session.commit()                              # to the test's savepoint: the worker's session sees it
    results = []

    def worker():                                    # a fresh thread: no request context to inherit
        with app.app_context():
            results.append(has_request_context())
            results.append(tasks.sweep_deadlines(at(2026, 10, 12)))
            results.append(tasks.sweep_deadlines(at(2026, 10, 15)))
            results.append(tasks.notify_department(case_id, lead))
            db.session.remove()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert results == [False, {"reminded": 1, "escalated": 0}, {"reminded": 0, "escalated": 1}, 1]
    assert [m.kind for m in outbox] == ["complaint_reminder", "complaint_escalation", "complaint_assigned"]
