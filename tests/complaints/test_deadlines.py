"""Working-day deadlines: acceptance checks C1-C7 and the calendar engine under them.

Dates are the official 2026 schedule (国办发明电〔2025〕7号 as carried by
chinesecalendar); 2027 is not announced, so it is provisional.
"""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from complaints import calendar_data, deadlines, tasks, workdays
from complaints.deadlines import compute_deadline, recompute_open_deadlines
from complaints.models import CaseEvent, CasePause, Channel, Complaint, DayKind, Extension, Status
from complaints.workdays import add_working_days, is_working_day, missing_years, warning_years, working_days_between
from core.audit import AuditEntry
from core.extensions import db
from tests.factories import demo_user

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(text: str) -> datetime:
    """'2026-09-30 17:00' in Beijing time, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def day(text: str) -> date:
    return date.fromisoformat(text)


def trace_day(deadline, iso: str) -> dict:
    return next(d for d in deadline.trace if d["date"] == iso)


@pytest.fixture
def calendar(calendar_2026):
    """2025 and 2026 official from chinesecalendar; 2027 unannounced."""
    return None


# C1-C5: the official 2026 calendar -------------------------------------------------

def test_c1_national_day_counts_the_saturday_make_up_workday(calendar):
    deadline = compute_deadline(beijing("2026-09-30 17:00"), 5, rule="standard")
    assert deadline.due_date == day("2026-10-13")
    assert not deadline.provisional
    assert trace_day(deadline, "2026-10-10") == {"date": "2026-10-10", "kind": "makeup_workday",
                                                 "name": "国庆节调休上班", "counted": True, "n": 3,
                                                 "provisional": False}
    assert [d["kind"] for d in deadline.trace if d["date"] <= "2026-10-07"][1:] == ["holiday"] * 7
    assert trace_day(deadline, "2026-10-01")["name"] == "国庆节"


def test_receipt_day_is_listed_first_and_never_counted(calendar):
    deadline = compute_deadline(beijing("2026-09-30 17:00"), 5, rule="standard")
    assert deadline.trace[0] == {"date": "2026-09-30", "kind": "working", "name": "", "counted": False, "n": 0,
                                 "receipt": True, "provisional": False}
    assert [d["date"] for d in deadline.trace if d["counted"]] == [
        "2026-10-08", "2026-10-09", "2026-10-10", "2026-10-12", "2026-10-13"]
    assert deadline.trace[-1]["date"] == "2026-10-13"


def test_c2_ten_working_days_across_national_day(calendar):
    assert compute_deadline(beijing("2026-09-30 17:00"), 10, rule="complex").due_date == day("2026-10-20")


def test_c3_received_on_a_holiday_saturday_counts_from_the_next_day(calendar):
    deadline = compute_deadline(beijing("2026-10-03 09:30"), 5, rule="standard")
    assert deadline.due_date == day("2026-10-13")  # chinesecalendar.find_workday(5, ...) says 10-14


def test_c3b_received_saturday_before_a_sunday_make_up_workday(calendar):
    deadline = compute_deadline(beijing("2026-09-19 10:00"), 5, rule="standard")
    assert deadline.due_date == day("2026-09-24")
    assert trace_day(deadline, "2026-09-20")["kind"] == "makeup_workday"
    assert trace_day(deadline, "2026-09-20")["counted"]


def test_c4_spring_festival_with_two_saturday_make_up_workdays(calendar):
    five = compute_deadline(beijing("2026-02-13 15:00"), 5, rule="standard")
    ten = compute_deadline(beijing("2026-02-13 15:00"), 10, rule="complex")
    assert (five.due_date, ten.due_date) == (day("2026-02-27"), day("2026-03-05"))
    assert trace_day(ten, "2026-02-14")["counted"] and trace_day(ten, "2026-02-28")["counted"]
    assert trace_day(ten, "2026-02-17") == {"date": "2026-02-17", "kind": "holiday", "name": "春节",
                                            "counted": False, "n": 1, "provisional": False}


def test_c5_may_day(calendar):
    assert compute_deadline(beijing("2026-04-30 16:00"), 5, rule="standard").due_date == day("2026-05-11")


# C6: a year not announced yet ----------------------------------------------------

def test_c6_unannounced_year_is_provisional_and_skips_new_years_day(calendar):
    deadline = compute_deadline(beijing("2026-12-30 11:00"), 5, rule="standard")
    assert deadline.due_date == day("2027-01-07")
    assert deadline.provisional
    assert deadline.calendar_versions == {"2026": 1, "2027": 0}
    assert trace_day(deadline, "2027-01-01") == {"date": "2027-01-01", "kind": "holiday", "name": "元旦",
                                                 "counted": False, "n": 1, "provisional": True}
    assert trace_day(deadline, "2026-12-31")["provisional"] is False


def test_a_deadline_inside_an_official_year_is_not_provisional_even_if_next_year_is_missing(calendar):
    assert not compute_deadline(beijing("2026-12-21 11:00"), 5, rule="standard").provisional


def test_unannounced_year_falls_back_to_weekdays_minus_statutory_holidays(calendar):
    assert is_working_day(day("2027-01-04")) == (True, True)
    assert is_working_day(day("2027-01-02")) == (False, True)
    assert is_working_day(day("2027-01-01")) == (False, True)
    spring = [d for d, name in workdays.statutory_holidays(2027).items() if name == "春节"]
    assert sorted(spring) == [day("2027-02-05"), day("2027-02-06"), day("2027-02-07"), day("2027-02-08")]
    assert is_working_day(day("2027-02-05")) == (False, True)
    assert workdays.statutory_holidays(2027)[day("2027-04-05")] == "清明节"
    assert {d: n for d, n in workdays.statutory_holidays(2027).items() if d.month in (5, 10)} == {
        day("2027-05-01"): "劳动节", day("2027-05-02"): "劳动节", day("2027-10-01"): "国庆节",
        day("2027-10-02"): "国庆节", day("2027-10-03"): "国庆节"}


def test_days_entered_for_a_year_not_yet_official_are_a_draft_and_do_not_count(calendar):
    calendar_data.set_calendar_day(day("2027-01-04"), DayKind.HOLIDAY, "元旦", actor="test")
    assert is_working_day(day("2027-01-04")) == (True, True)
    calendar_data.mark_year_official(2027, "国办发明电〔2026〕9号", actor="test")
    assert is_working_day(day("2027-01-04")) == (False, False)


def test_official_calendar_overrides_the_weekday_rule(calendar):
    assert is_working_day(day("2026-10-10")) == (True, False)   # Saturday, make-up workday
    assert is_working_day(day("2026-10-01")) == (False, False)  # Thursday, National Day
    assert is_working_day(day("2026-10-08")) == (True, False)   # Thursday after the holiday
    assert is_working_day(day("2026-10-17")) == (False, False)  # an ordinary Saturday
    assert is_working_day(day("2026-10-16")) == (True, False)


def test_the_calendar_is_read_by_year_not_by_day(calendar, app):
    workdays.invalidate_calendar_cache()
    statements = []

    def count(conn, cursor, statement, *args):
        if "work_calendar" in statement:
            statements.append(statement)

    engine = db.session.get_bind()  # the per-test connection
    event.listen(engine, "before_cursor_execute", count)
    try:
        for offset in range(365):
            is_working_day(date(2026, 1, 1) + timedelta(days=offset))
        compute_deadline(beijing("2026-12-30 11:00"), 10, rule="complex")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert 1 <= len(statements) <= 2  # one CalendarYear query and one CalendarDay range query


# C7: paused clock -----------------------------------------------------------------

def test_c7_paused_days_are_excluded_and_shown_in_the_trace(calendar):
    plain = compute_deadline(beijing("2026-11-02 09:00"), 5, rule="standard")
    assert plain.due_date == day("2026-11-09")
    paused = compute_deadline(beijing("2026-11-02 09:00"), 5, rule="standard",
                              pauses=[(beijing("2026-11-04 00:00"), beijing("2026-11-09 00:00"))])
    assert paused.due_date == day("2026-11-12")
    assert [d["date"] for d in paused.trace if d["kind"] == "paused"] == ["2026-11-04", "2026-11-05", "2026-11-06"]
    assert trace_day(paused, "2026-11-07") == {"date": "2026-11-07", "kind": "weekend", "name": "", "counted": False,
                                               "n": 1, "provisional": False, "paused": True}
    assert trace_day(paused, "2026-11-09")["counted"]
    assert paused.to_json()["pauses"] == [{"start": "2026-11-04T00:00:00+08:00", "end": "2026-11-09T00:00:00+08:00"}]


def test_a_day_only_partly_paused_still_counts(calendar):
    deadline = compute_deadline(beijing("2026-11-02 09:00"), 5, rule="standard",
                                pauses=[(beijing("2026-11-04 10:00"), beijing("2026-11-06 15:00"))])
    assert [d["date"] for d in deadline.trace if d["kind"] == "paused"] == ["2026-11-05"]
    assert deadline.due_date == day("2026-11-10")


def test_a_pause_of_a_few_hours_changes_nothing(calendar):
    deadline = compute_deadline(beijing("2026-11-02 09:00"), 5, rule="standard",
                                pauses=[(beijing("2026-11-04 09:00"), beijing("2026-11-04 17:00"))])
    assert deadline.due_date == day("2026-11-09")


def test_an_open_pause_is_taken_to_end_now(calendar):
    deadline = compute_deadline(beijing("2026-11-02 09:00"), 5, rule="standard",
                                pauses=[(beijing("2026-11-04 00:00"), None)], now=beijing("2026-11-06 10:00"))
    assert [d["date"] for d in deadline.trace if d["kind"] == "paused"] == ["2026-11-04", "2026-11-05"]
    assert deadline.due_date == day("2026-11-11")
    assert deadline.open_pause and deadline.to_json()["open_pause"] is True
    assert deadline.to_json()["pauses"][0]["end"] is None


def test_approved_extensions_are_counted_after_the_regular_days(calendar):
    deadline = compute_deadline(beijing("2026-09-30 17:00"), 5, rule="standard", extra_days=2)
    assert deadline.due_date == day("2026-10-15")
    assert [d["date"] for d in deadline.trace if d.get("extension")] == ["2026-10-14", "2026-10-15"]
    assert deadline.working_days == 5 and deadline.extra_days == 2


# The shape of a deadline ------------------------------------------------------------

def test_deadline_ends_at_beijing_midnight_after_the_due_day(calendar):
    deadline = compute_deadline(beijing("2026-09-30 17:00"), 5, rule="standard")
    assert deadline.due_at == datetime(2026, 10, 13, 16, 0, tzinfo=UTC)
    assert deadline.due_at.tzinfo is not None


def test_receipt_day_is_the_beijing_day_not_the_utc_day(calendar):
    # 2026-09-29 17:30 UTC is 2026-09-30 01:30 in Beijing.
    deadline = compute_deadline(datetime(2026, 9, 29, 17, 30, tzinfo=UTC), 5, rule="standard")
    assert deadline.trace[0]["date"] == "2026-09-30"
    assert deadline.due_date == day("2026-10-13")


def test_trace_is_json_for_the_case_row(calendar):
    data = compute_deadline(beijing("2026-09-30 17:00"), 5, rule="standard", extra_days=1).to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["rule"] == "standard" and data["due_date"] == "2026-10-14" and data["working_days"] == 5
    assert data["calendar_versions"] == {"2026": 1}


def test_naive_times_and_negative_days_are_refused(calendar):
    with pytest.raises(ValueError):
        compute_deadline(datetime(2026, 9, 30, 17, 0), 5, rule="standard")
    with pytest.raises(ValueError):
        compute_deadline(beijing("2026-09-30 17:00"), -1, rule="standard")
    with pytest.raises(ValueError):
        compute_deadline(beijing("2026-09-30 17:00"), 5, rule="standard",
                         pauses=[(beijing("2026-10-05 00:00"), beijing("2026-10-04 00:00"))])


def test_zero_days_is_due_at_the_end_of_the_receipt_day(calendar):
    deadline = compute_deadline(beijing("2026-09-30 17:00"), 0, rule="on_the_spot")
    assert deadline.due_date == day("2026-09-30")


# Helpers for other parts ---------------------------------------------------------------

def test_add_working_days_matches_the_civil_code_count(calendar):
    assert add_working_days(day("2026-09-30"), 5) == (day("2026-10-13"), False)
    assert add_working_days(day("2026-10-03"), 5) == (day("2026-10-13"), False)
    assert add_working_days(day("2026-12-30"), 5) == (day("2027-01-07"), True)
    assert add_working_days(day("2026-09-30"), 1) == (day("2026-10-08"), False)
    assert add_working_days(day("2026-09-30"), 0) == (day("2026-09-30"), False)


def test_working_days_between_is_the_inverse_of_add_working_days(calendar):
    assert working_days_between(day("2026-09-30"), day("2026-10-13")) == 5
    assert working_days_between(day("2026-10-13"), day("2026-09-30")) == -5
    assert working_days_between(day("2026-10-01"), day("2026-10-07")) == 0
    assert working_days_between(day("2026-10-01"), day("2026-10-08")) == 1
    assert working_days_between(day("2026-12-30"), day("2027-01-07")) == 5
    start = day("2026-01-20")
    for n in range(0, 40, 3):
        due, _ = add_working_days(start, n)
        assert working_days_between(start, due) == n


def test_working_days_between_spans_several_years(calendar):
    assert working_days_between(day("2025-12-31"), day("2026-12-31")) == sum(
        is_working_day(day("2026-01-01") + timedelta(days=i))[0] for i in range(365))


def test_missing_years_lists_years_without_an_official_calendar(calendar):
    assert missing_years(day("2026-11-26")) == [2027]
    assert missing_years(day("2025-06-01")) == []
    assert missing_years(day("2026-06-01"), ahead=2) == [2027, 2028]


def test_next_year_is_warned_about_from_november_and_the_current_year_always(calendar):
    assert warning_years(day("2026-10-31")) == []
    assert warning_years(day("2026-11-01")) == [2027]
    assert warning_years(day("2027-03-01")) == [2027]
    calendar_data.set_calendar_day(day("2027-01-01"), DayKind.HOLIDAY, "元旦", actor="test")
    calendar_data.mark_year_official(2027, "国办发明电〔2026〕9号", actor="test")
    assert warning_years(day("2026-11-26")) == []


# Recomputation when the calendar changes ------------------------------------------------

_numbers = iter(range(1, 10_000))


def open_case(institution, received_at: datetime, working_days: int = 5, status: Status = Status.IN_HANDLING,
              **values) -> Complaint:
    """An open case with its deadline computed the way the intake service stores it."""
    case = Complaint(institution_id=institution.id, case_number=f"DL-{next(_numbers):05d}", channel=Channel.PHONE,
                     received_at=received_at, subject="候诊时间过长", description="等候三小时无人解释。",
                     status=status.value, deadline_rule="standard", working_days=working_days, **values)
    db.session.add(case)
    db.session.flush()
    deadlines.apply_deadline(case, deadlines.deadline_for(case))
    db.session.flush()
    return case


def moved_events(case: Complaint) -> list[CaseEvent]:
    return list(db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == case.id,
                                                           CaseEvent.action == "deadline_recomputed")))


def test_c6_confirming_2027_recomputes_and_logs_the_moved_deadline(calendar, rmyy):
    admin = demo_user("platform")
    case = open_case(rmyy, beijing("2026-12-30 11:00"))
    assert (case.due_date, case.deadline_provisional) == (day("2027-01-07"), True)
    # The 2027 notice (hypothetical here): 1-3 January off, with Monday the 4th bridged.
    for d in ("2027-01-01", "2027-01-02", "2027-01-03", "2027-01-04"):
        calendar_data.set_calendar_day(day(d), DayKind.HOLIDAY, "元旦", actor=admin)
    calendar_data.mark_year_official(2027, "国办发明电〔2026〕9号", actor=admin)

    assert recompute_open_deadlines(actor=admin) == 1
    assert (case.due_date, case.deadline_provisional) == (day("2027-01-08"), False)
    assert case.deadline_trace["calendar_versions"] == {"2026": 1, "2027": 1}
    [moved] = moved_events(case)
    assert moved.data["from"] == "2027-01-07" and moved.data["to"] == "2027-01-08"
    assert "2027-01-07" in moved.note and "2027-01-08" in moved.note
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.deadline_recomputed",
                                                       AuditEntry.target_id == str(case.id)))
    assert audit.data["to"] == "2027-01-08" and audit.actor_id == admin.id
    assert recompute_open_deadlines(actor=admin) == 0  # idempotent
    assert len(moved_events(case)) == 1


def test_confirming_a_year_that_keeps_the_date_still_tells_the_officer(calendar, rmyy):
    case = open_case(rmyy, beijing("2026-12-30 11:00"))
    calendar_data.set_calendar_day(day("2027-01-01"), DayKind.HOLIDAY, "元旦", actor="test")
    calendar_data.mark_year_official(2027, "国办发明电〔2026〕9号", actor="test")
    assert recompute_open_deadlines(actor="test") == 1
    assert (case.due_date, case.deadline_provisional) == (day("2027-01-07"), False)
    [event_] = moved_events(case)
    assert "确认不变" in event_.note


def test_recompute_uses_pauses_and_approved_extensions_only(calendar, rmyy):
    officer = demo_user("rmyy-officer")
    case = open_case(rmyy, beijing("2026-11-02 09:00"))
    assert case.due_date == day("2026-11-09")
    db.session.add(CasePause(complaint_id=case.id, reason="awaiting_material", started_at=beijing("2026-11-04 00:00"),
                             ended_at=beijing("2026-11-09 00:00")))
    db.session.add(Extension(complaint_id=case.id, extra_days=2, reason="需鉴定", status="approved",
                             requested_by_id=officer.id))
    db.session.add(Extension(complaint_id=case.id, extra_days=9, reason="未批准", status="rejected",
                             requested_by_id=officer.id))
    db.session.flush()
    assert recompute_open_deadlines(actor="test") == 1
    assert case.due_date == day("2026-11-16")  # C7's 11-12 plus two approved working days
    assert case.deadline_trace["extra_days"] == 2


def test_recompute_leaves_closed_cases_alone_and_gives_a_case_awaiting_triage_its_deadline(calendar, rmyy):
    closed = open_case(rmyy, beijing("2026-09-30 17:00"), status=Status.CLOSED)
    # Registered before the clock started at receipt (migration 0007_triage_clock): no deadline yet.
    registered = Complaint(institution_id=rmyy.id, case_number="DL-NOCLOCK", channel=Channel.PHONE,
                           received_at=beijing("2026-09-30 17:00"), subject="s", description="d",
                           status=Status.REGISTERED.value)
    db.session.add(registered)
    db.session.flush()
    assert deadlines.cases_without_a_clock() == 1
    calendar_data.set_calendar_day(day("2026-10-09"), DayKind.HOLIDAY, "测试", actor="test")

    assert recompute_open_deadlines(actor="test") == 1
    assert closed.due_date == day("2026-10-13")
    assert (registered.due_date, registered.deadline_rule, registered.working_days) == (
        day("2026-10-14"), "standard", 5)                       # from its receipt, on the calendar as it is now
    [started] = db.session.scalars(select(CaseEvent).where(CaseEvent.complaint_id == registered.id,
                                                           CaseEvent.action == "deadline_set"))
    assert "2026-10-14" in started.note and "自接到投诉次日起计算" in started.note
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.deadline_set",
                                                       AuditEntry.target_id == str(registered.id)))
    assert audit.data["due_date"] == "2026-10-14" and audit.data["from_receipt"] is True
    assert deadlines.cases_without_a_clock() == 0
    assert recompute_open_deadlines(actor="test") == 0          # idempotent


def test_an_edit_of_an_official_year_moves_open_deadlines(calendar, rmyy):
    case = open_case(rmyy, beijing("2026-09-30 17:00"))
    calendar_data.set_calendar_day(day("2026-10-09"), DayKind.HOLIDAY, "测试", actor="test")
    assert recompute_open_deadlines(actor="test") == 1
    assert case.due_date == day("2026-10-14")
    assert case.deadline_trace["calendar_versions"] == {"2026": 2}


def test_a_reopened_case_keeps_counting_from_its_reopening(calendar, rmyy):
    officer = demo_user("rmyy-officer")
    case = open_case(rmyy, beijing("2026-09-01 09:00"), status=Status.REOPENED)
    db.session.add(Extension(complaint_id=case.id, extra_days=3, reason="第一轮延期", status="approved",
                             requested_by_id=officer.id, decided_at=beijing("2026-09-03 10:00")))
    db.session.flush()
    # As the feedback service reopens it: a new round counted from the reopening day.
    reopened_at = beijing("2026-09-30 17:00")
    deadlines.apply_deadline(case, compute_deadline(reopened_at, 5, rule="standard", now=reopened_at))
    case.deadline_trace = {**case.deadline_trace, "reopened_at": reopened_at.isoformat()}
    db.session.flush()
    assert case.due_date == day("2026-10-13")
    calendar_data.set_calendar_day(day("2026-10-09"), DayKind.HOLIDAY, "测试", actor="test")
    assert recompute_open_deadlines(actor="test") == 1
    assert case.due_date == day("2026-10-14")  # from the reopening, without the first round's extension
    assert case.deadline_trace["reopened_at"] == reopened_at.isoformat()
    assert deadlines.clock_start(case) == reopened_at


def test_co_handlers_sub_deadlines_follow_the_calendar(calendar, rmyy):
    from complaints.models import CaseDepartment
    from tests.complaints.conftest import department

    case = open_case(rmyy, beijing("2026-09-30 17:00"))
    co = CaseDepartment(complaint_id=case.id, department_id=department(rmyy, "XNK").id, role="co",
                        due_at=beijing("2026-10-10 00:00"))
    db.session.add(co)
    db.session.flush()
    db.session.refresh(case)
    calendar_data.set_calendar_day(day("2026-10-09"), DayKind.HOLIDAY, "测试", actor="test")
    recompute_open_deadlines(actor="test")
    # Three working days after 09-30 with 10-09 off: 10-08, 10-10, 10-12.
    assert co.due_at == datetime(2026, 10, 12, 16, 0, tzinfo=UTC)


def test_the_recompute_job_runs_in_a_worker_without_a_request(app):
    from tests.factories import demo_institution

    with app.app_context():  # as on an RQ worker: an app context and no request
        calendar_data.seed_from_chinesecalendar([2026], actor="test")
        case = open_case(demo_institution("rmyy"), beijing("2026-09-30 17:00"))
        calendar_data.set_calendar_day(day("2026-10-09"), DayKind.HOLIDAY, "测试", actor="test")
        db.session.commit()
        assert tasks.recompute_deadlines_job(demo_user("platform").id) == 1
        assert db.session.get(Complaint, case.id).due_date == day("2026-10-14")
        [moved] = moved_events(case)
        assert moved.note == "工作日历调整，办理期限由 2026-10-13 变更为 2026-10-14。"
