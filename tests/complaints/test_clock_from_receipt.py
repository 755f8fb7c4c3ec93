"""The clock starts at receipt, not at acceptance (issue 10, point 1).

医疗机构投诉管理办法 counts the answer period "于接到投诉之日起", and 民法典 第二百零一条 leaves the day of
receipt out: a case gets its deadline when it is registered, a case nobody triaged is overdue once that
deadline passes, triage has its own target (ComplaintSettings.triage_days, default 1 working day), and the
complainant sees the due date on the receipt and the lookup page from the start.
"""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from complaints import deadlines, ledger, lookup, queues, tasks, triage, workdays
from complaints.models import CaseEvent, Channel, Complaint, ComplaintSettings, DeclineReason, Status
from complaints.settings import complaint_settings
from core.audit import AuditEntry
from core.clock import local_today
from core.extensions import db
from tests.complaints.conftest import open_form, post_complaint, staff_login
from tests.factories import demo_user

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).astimezone(UTC)


def working_days_ago(n: int, hour: int = 10) -> datetime:
    """Today's hour in Beijing, moved back so that ``n`` working days lie after the day of receipt up to today."""
    day = local_today()
    while workdays.working_days_between(day, local_today()) < n:
        day -= timedelta(days=1)
    return beijing(f"{day.isoformat()} {hour:02d}:00")


def queue_rows(html: str) -> list[str]:
    """The subjects of the main queue table, in order."""
    table = html.split('<table class="table queue">')[-1]
    return re.findall(r'<td class="subject"><a href="[^"]+">([^<]+)</a>', table)


def tile(html: str, css: str) -> int:
    found = re.search(rf'class="q-tile {css}"[^>]*><span class="n">(\d+)</span>', html)
    assert found, css
    return int(found.group(1))


# Registration starts the clock -------------------------------------------------------------

def test_a_case_gets_its_deadline_when_it_is_registered(make_case, calendar_2026):
    case = make_case(received_at=beijing("2026-11-25 10:00"))      # Wednesday
    assert case.status == Status.REGISTERED
    assert (case.due_date, case.deadline_rule, case.working_days) == (date(2026, 12, 2), "standard", 5)
    assert case.due_at == beijing("2026-12-03 00:00")               # 24:00 of the due day
    assert case.deadline_trace["method"] == "civil_code_201"
    [event] = [e for e in case.events if e.action == "deadline_set"]
    assert "2026-12-02" in event.note and "自接到投诉次日起计算" in event.note
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint.register",
                                                       AuditEntry.target_id == str(case.id)))
    assert entry.data["due_date"] == "2026-12-02"


def test_the_institutions_rule_applies_from_registration_and_stays_with_the_case(make_case, rmyy, calendar_2026,
                                                                                 officer):
    db.session.add(ComplaintSettings(institution_id=rmyy.id, standard_days=3, complex_days=10))
    db.session.flush()
    case = make_case(received_at=beijing("2026-11-25 10:00"))
    assert (case.working_days, case.due_date) == (3, date(2026, 11, 30))
    complaint_settings(rmyy.id).standard_days = 5                   # changed after the case was registered
    db.session.flush()
    triage.accept_complaint(case, actor=officer)
    assert (case.working_days, case.due_date) == (3, date(2026, 11, 30))


def test_an_untriaged_case_is_overdue_once_its_deadline_passes(make_case, calendar_2026):
    case = make_case(received_at=beijing("2026-11-25 10:00"))
    assert not deadlines.is_overdue(case, beijing("2026-12-02 23:59"))
    assert deadlines.is_overdue(case, beijing("2026-12-03 00:00"))
    late = db.session.scalar(select(Complaint.id).where(Complaint.id == case.id,
                                                         deadlines.overdue_sql(beijing("2026-12-03 00:00"))))
    assert late == case.id
    # The ledger's 是否按时答复: unanswered past the deadline is 否, awaiting triage or not.
    assert ledger.timeliness(status=case.status, due_at=case.due_at, replied_at=None, paused_since=None,
                             merged=False, now=beijing("2026-12-07 10:00")) is False


def test_declining_or_settling_owes_no_further_deadline(make_case, calendar_2026, officer):
    declined = make_case(received_at=beijing("2026-11-25 10:00"))
    triage.decline_complaint(declined, DeclineReason.REPEATED, "重复投诉。", actor=officer)
    settled = make_case(received_at=beijing("2026-11-25 11:00"))
    triage.settle_on_the_spot(settled, "当场解释。", actor=officer)
    later = beijing("2026-12-07 10:00")
    for case in (declined, settled):
        assert case.due_date == date(2026, 12, 2)                 # kept as it was when registered
        assert not deadlines.is_overdue(case, later)
        assert ledger.timeliness(status=case.status, due_at=case.due_at, replied_at=case.replied_at,
                                 paused_since=None, merged=False, now=later) is None


# The officer's queue -------------------------------------------------------------------------

@pytest.fixture
def untriaged(make_case, rmyy):
    """A case nobody triaged for 8 working days, one received 2 working days ago, and one received today."""
    return {
        "old": make_case(subject="被遗忘的投诉", received_at=working_days_ago(8), complainant_name="钱七"),
        "late": make_case(subject="两天没人受理", received_at=working_days_ago(2)),
        "new": make_case(subject="刚登记的投诉"),
    }


def test_the_officers_queue_counts_an_untriaged_old_case_as_overdue(client, rmyy, untriaged):
    counts = queues.queue_counts(rmyy)
    assert counts["overdue"] == 1 and counts["registered"] == 3 and counts["open"] == 0
    assert counts["triage_late"] == 2                              # beyond 1 working day: the old and the late one

    staff_login(client, "rmyy-officer")
    base = f"/i/{rmyy.id}/complaints/"
    html = client.get(base).get_data(as_text=True)
    assert tile(html, "t-overdue") == 1 and tile(html, "t-triage") == 3
    assert '<span class="l late">超过 1 个工作日：2 件</span>' in html  # on the 待受理 tile
    assert "受理时限：接到投诉次日起 1 个工作日内。办理期限自接到投诉次日起计算" in html  # in the triage panel
    triage_panel = html.split('<section class="card triage">')[1].split("</section>")[0]
    assert "只看超过受理时限（2）" in triage_panel
    assert triage_panel.count("受理超时") == 2 and "已超过受理时限" in triage_panel
    assert "超期 3 个工作日" in triage_panel                         # the old one: due after 5, now 8

    # The 已超期 tile lists it; the 受理超时 tile lists the two beyond the triage target, oldest first.
    assert queue_rows(client.get(base, query_string={"overdue": "y"}).get_data(as_text=True)) == ["被遗忘的投诉"]
    late = client.get(base, query_string={"status": "registered", "triage_late": "y"}).get_data(as_text=True)
    assert queue_rows(late) == ["被遗忘的投诉", "两天没人受理"]


def test_the_triage_target_is_the_institutions_setting(rmyy, untriaged):
    db.session.add(ComplaintSettings(institution_id=rmyy.id, triage_days=0))
    db.session.flush()
    assert queues.queue_counts(rmyy)["triage_late"] == 2           # the same day: not yet late for today's
    complaint_settings(rmyy.id).triage_days = 3
    db.session.flush()
    assert queues.queue_counts(rmyy)["triage_late"] == 1


def test_a_handlers_queue_has_no_untriaged_cases(rmyy, untriaged):
    counts = queues.queue_counts(rmyy, departments={d for d in demo_user("rmyy-handler").department_ids})
    assert counts["overdue"] == counts["registered"] == counts["triage_late"] == 0


@pytest.mark.parametrize("triage_days", [0, 1, 2, 5])
def test_the_triage_cutoff_in_sql_agrees_with_the_rule_across_national_day(calendar_2026, triage_days):
    # Every receipt day from mid-September to the end of October, seen on every day of October at 09:00.
    for now_day in range(1, 32):
        now = beijing(f"2026-10-{now_day:02d} 09:00")
        cutoff = deadlines.triage_cutoff(triage_days, now)
        for offset in range(0, 50):
            received = beijing("2026-09-15 23:30") + timedelta(days=offset)
            if received > now:
                break
            assert (received < cutoff) == deadlines.triage_late(Status.REGISTERED, received, triage_days, now), (
                triage_days, now, received)


def test_the_case_page_shows_the_triage_target_and_the_running_clock(client, rmyy, untriaged, officer):
    staff_login(client, "rmyy-officer")
    old = untriaged["old"]
    html = client.get(f"/i/{rmyy.id}/complaints/{old.id}").get_data(as_text=True)
    card = html.split('aria-label="办理期限"')[1].split("</section>")[0]
    assert "is-overdue" in html.split('aria-label="办理期限"')[0].rsplit("<section", 1)[1]
    assert old.due_date.isoformat() in card and "已超期 3 个工作日" in card
    triage_due = deadlines.triage_due_date(old.received_at, 1)
    assert "受理时限" in card and triage_due.isoformat() in card and "已超过受理时限" in card

    new = untriaged["new"]
    html = client.get(f"/i/{rmyy.id}/complaints/{new.id}").get_data(as_text=True)
    card = html.split('aria-label="办理期限"')[1].split("</section>")[0]
    assert "剩余 5 个工作日" in card and "已超过受理时限" not in card

    triage.accept_complaint(new, actor=officer)
    html = client.get(f"/i/{rmyy.id}/complaints/{new.id}").get_data(as_text=True)
    card = html.split('aria-label="办理期限"')[1].split("</section>")[0]
    assert "受理时限" not in card and "剩余 5 个工作日" in card


def test_the_triage_target_is_edited_on_the_settings_page(client, rmyy):
    staff_login(client, "rmyy-officer")
    path = f"/i/{rmyy.id}/complaints/settings"
    page = client.get(path).get_data(as_text=True)
    assert "受理时限（工作日）" in page and 'name="triage_days"' in page and 'value="1"' in page
    values = {"triage_days": "2", "standard_days": "5", "complex_days": "10", "reminder_days_before": "1",
              "escalate_after_days": "0", "case_prefix": "TS", "feedback_valid_days": "7"}
    assert client.post(path, data=values).status_code == 302
    assert complaint_settings(rmyy.id).triage_days == 2
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint_settings.update"))
    assert entry.data == {"triage_days": [1, 2]}

    refused = client.post(path, data={**values, "triage_days": "6"})
    assert refused.status_code == 400 and "受理时限不能长于一般投诉办理时限" in refused.get_data(as_text=True)
    assert client.post(path, data={**values, "triage_days": "-1"}).status_code == 400
    assert complaint_settings(rmyy.id).triage_days == 2


# Reminders and 督办 ---------------------------------------------------------------------------

def test_an_untriaged_case_is_reminded_to_the_officers_and_escalated_when_overdue(make_case, calendar_2026, outbox):
    case = make_case(received_at=beijing("2026-09-30 17:00"), first_contact=None, channel=Channel.SELF_SERVICE,
                     actor="self-service")                          # due Tue 10-13 (national day)
    assert tasks.sweep_deadlines(beijing("2026-10-12 09:00").isoformat()) == {"reminded": 1, "escalated": 0}
    [reminder] = [m for m in outbox if m.kind == "complaint_reminder"]
    assert set(reminder.recipients) == {"rmyy-officer"} and "尚未受理" in reminder.body
    assert tasks.sweep_deadlines(beijing("2026-10-15 09:00").isoformat()) == {"reminded": 0, "escalated": 1}
    [escalation] = [m for m in outbox if m.kind == "complaint_escalation"]
    assert {"rmyy-officer", "rmyy-leader"} <= set(escalation.recipients)
    assert [e.action for e in case.events if e.action == "supervise"] == ["supervise"]


# What the complainant sees -------------------------------------------------------------------

def test_the_receipt_and_the_lookup_show_the_due_date_from_the_start(client, rmyy, categories):
    response, _data = post_complaint(client, rmyy)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "投诉已提交" in html
    number = re.search(r'<dd class="code">([^<]+)</dd>', html).group(1)
    code = re.search(r'<dd class="code pin">(\d{6})</dd>', html).group(1)
    case = db.session.scalar(select(Complaint).where(Complaint.case_number == number,
                                                     Complaint.institution_id == rmyy.id))
    due = case.due_date.isoformat()
    facts = html.split('<dl class="kv">')[1].split("</dl>")[0]
    assert "答复期限" in facts and due in facts

    assert lookup.public_status(case).due_on == case.due_date
    page = client.post("/c/lookup", data={"institution": str(rmyy.id), "case_number": number, "code": code})
    looked = page.get_data(as_text=True)
    assert "已收到，等待受理" in looked and "答复期限" in looked and due in looked


def test_the_staff_receipt_shows_the_stored_due_date(client, rmyy, categories, calendar_2026):
    staff_login(client, "rmyy-officer")
    path = f"/i/{rmyy.id}/complaints/new"
    received = datetime.now(BEIJING) - timedelta(hours=1)
    data = {**open_form(client, path), "channel": "walk_in", "received_at": received.strftime("%Y-%m-%dT%H:%M"),
            "category": str(categories["attitude"].id), "description": "窗口工作人员态度生硬。", "relation": "self",
            "subject": "窗口态度生硬"}
    response = client.post(path, data=data, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "投诉已登记" in html
    case = db.session.scalar(select(Complaint).where(Complaint.institution_id == rmyy.id)
                             .order_by(Complaint.id.desc()))
    assert case.due_date == workdays.add_working_days(received.date(), 5)[0]
    assert case.due_date.isoformat() in html


# Existing cases and the demo -----------------------------------------------------------------

def test_seed_calendar_gives_cases_registered_before_the_change_their_deadline(app, ctx, rmyy, calendar_2026):
    old = Complaint(institution_id=rmyy.id, case_number="TS2026-00246", channel=Channel.SELF_SERVICE,
                    received_at=beijing("2026-11-25 10:00"), subject="s", description="d",
                    status=Status.REGISTERED.value)                   # as registered before migration 0007
    db.session.add(old)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["seed-calendar", "--year", "2026"])
    assert result.exit_code == 0, result.output
    assert "Calendar: 0 day(s)" in result.output and "1 awaiting triage given their deadline" in result.output
    case = db.session.get(Complaint, old.id)
    assert (case.due_date, case.working_days) == (date(2026, 12, 2), 5)
    assert deadlines.is_overdue(case, beijing("2026-12-07 10:00"))
    again = app.test_cli_runner().invoke(args=["seed-calendar", "--year", "2026"])
    assert "awaiting triage" not in again.output and "deadline moved" not in again.output


def test_the_demo_registers_cases_with_deadlines_and_one_is_overdue_untriaged(rmyy, categories, calendar_2026):
    from complaints import demo

    now = beijing("2026-12-07 10:00")
    demo.seed_cases(120, institutions=[rmyy], days=90, now=now)
    registered = list(db.session.scalars(select(Complaint).where(Complaint.institution_id == rmyy.id,
                                                                 Complaint.status == Status.REGISTERED.value)))
    assert registered and all(c.due_date is not None and c.working_days == 5 for c in registered)
    assert any(deadlines.is_overdue(c, now) for c in registered)
    assert queues.queue_counts(rmyy, now=now)["overdue"] > sum(
        1 for c in db.session.scalars(select(Complaint).where(Complaint.institution_id == rmyy.id,
                                                              Complaint.status.in_(queues.OPEN_VALUES)))
        if deadlines.is_overdue(c, now))
    events = db.session.scalars(select(CaseEvent.action).where(CaseEvent.complaint_id == registered[0].id)).all()
    assert events[:2] == ["registered", "deadline_set"]


def test_the_demos_reopened_cases_keep_counting_from_their_reopening(rmyy, categories, calendar_2026):
    from complaints import demo

    now = beijing("2026-12-07 10:00")
    demo.seed_cases(150, institutions=[rmyy], days=120, now=now)
    reopened = list(db.session.scalars(select(Complaint).where(Complaint.institution_id == rmyy.id,
                                                               Complaint.reopened_count > 0,
                                                               Complaint.status.in_(queues.OPEN_VALUES),
                                                               Complaint.paused_since.is_(None))))
    assert reopened
    for case in reopened:
        assert deadlines.clock_start(case) > case.received_at
        assert deadlines.deadline_for(case, now=now).due_date == case.due_date  # a recompute moves nothing
