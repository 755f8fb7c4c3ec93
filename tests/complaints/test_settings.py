"""An institution sets its own complaint targets; the national ones are the defaults."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from complaints.settings import complaint_settings
from core.audit import AuditEntry
from core.extensions import db
from tests.complaints.conftest import staff_login
from tests.factories import demo_user


def form(**overrides):
    values = {"standard_days": "5", "complex_days": "10", "reminder_days_before": "1", "escalate_after_days": "0",
              "case_prefix": "TS", "feedback_valid_days": "7"}
    values.update({k: str(v) for k, v in overrides.items()})
    return values


def test_the_defaults_are_the_national_five_and_ten_working_days(rmyy):
    settings = complaint_settings(rmyy.id)
    assert (settings.standard_days, settings.complex_days) == (5, 10)


def test_an_officer_shortens_the_deadline_and_new_cases_use_it(client, rmyy, make_case, calendar_2026):
    from complaints import triage

    staff_login(client, "rmyy-officer")
    response = client.post(f"/i/{rmyy.id}/complaints/settings", data=form(standard_days=3, case_prefix="YY"))
    assert response.status_code == 302
    assert complaint_settings(rmyy.id).standard_days == 3
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint_settings.update"))
    assert entry.data["standard_days"] == [5, 3] and entry.institution_id == rmyy.id
    case = make_case(received_at=datetime(2026, 9, 30, 9, 0, tzinfo=UTC))
    assert case.case_number.startswith("YY2026-")
    triage.accept_complaint(case, actor=demo_user("rmyy-officer"), expected_version=case.version)
    assert case.working_days == 3
    # 10-01…10-07 off; 10-08 and 10-09 are working days 1 and 2, Saturday 10-10 (调休) is day 3.
    assert case.due_date.isoformat() == "2026-10-10"


def test_a_complex_limit_shorter_than_the_standard_one_is_refused(client, rmyy):
    staff_login(client, "rmyy-officer")
    response = client.post(f"/i/{rmyy.id}/complaints/settings", data=form(standard_days=8, complex_days=6))
    assert response.status_code == 400
    assert "不能短于一般时限" in response.get_data(as_text=True)


def test_handlers_cannot_change_the_targets(client, rmyy):
    staff_login(client, "rmyy-handler")
    assert client.post(f"/i/{rmyy.id}/complaints/settings", data=form(standard_days=1)).status_code == 403
    assert complaint_settings(rmyy.id).standard_days == 5
