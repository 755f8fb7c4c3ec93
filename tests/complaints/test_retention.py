"""The complainant's name and phone are purged after the institution's retention period (complaints/retention.py);
the case, the ledger and the statistics keep everything else."""
from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from complaints import ledger, retention, stats, tasks
from complaints.models import CasePause, Complaint, ComplaintSettings, Reply
from complaints.settings import complaint_settings
from core.audit import AuditEntry
from core.extensions import db
from tests.complaints.conftest import add_case, department, staff_login
from tests.factories import demo_user

NOW = datetime(2027, 12, 1, 3, 0, tzinfo=UTC)
NAME, PHONE = "欧阳测试", "13800000000"


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


@pytest.fixture
def cases(rmyy, categories):
    """rmyy's cases around the default periods (365 days; 1,095 for possible disputes)."""
    officer = demo_user("rmyy-officer")
    xnk = department(rmyy, "XNK")
    common = {"first_contact_id": officer.id, "category_id": categories["attitude"].id, "lead_department_id": xnk.id,
              "complainant_name": NAME, "complainant_phone": PHONE}

    def case(status: str, closed: float | None, **values):
        received = values.pop("received", None) or days_ago((closed or 0) + 10)
        return add_case(rmyy, received=received, status=status,
                        closed_at=days_ago(closed) if closed is not None else None, **{**common, **values})

    made = {
        "old_closed": case("closed", 400, replied_at=days_ago(401), resolved=True, subject="药房窗口排队太久"),
        "old_declined": case("declined", 366, decline_reason="repeated", decline_notice="重复投诉。"),
        "old_settled": case("settled", 500, settlement_note="当场解释。", category_id=None),
        "recent_closed": case("closed", 364, replied_at=days_ago(365), resolved=True),
        "old_open": case("in_handling", None, received=days_ago(900)),
        "old_reopened": case("reopened", None, received=days_ago(900)),
        "dispute_emergency": case("closed", 1000, safety_emergency=True),
        "dispute_category": case("closed", 1000, category_id=categories["quality_safety"].id),
        "dispute_court": case("declined", 1000, decline_reason="in_court", decline_notice="已起诉。"),
        "dispute_paused": case("closed", 1000),
        "old_dispute": case("closed", 1100, safety_emergency=True),
        "anonymous": case("closed", 400, complainant_name=None, complainant_phone=None),
    }
    db.session.add(CasePause(complaint_id=made["dispute_paused"].id, reason="mediation",
                             started_at=days_ago(1020), ended_at=days_ago(1015)))
    db.session.add(Reply(complaint_id=made["old_closed"].id, number=1, body="已增加高峰时段窗口。", status="sent",
                         drafted_by_id=officer.id, sent_at=days_ago(401)))
    db.session.flush()
    return made


def contact(case: Complaint) -> tuple:
    return tuple(db.session.execute(select(Complaint.complainant_name, Complaint.complainant_phone,
                                           Complaint.contact_purged_at).where(Complaint.id == case.id)).one())


def test_finished_cases_past_the_period_lose_name_and_phone_and_nothing_else(cases):
    result = retention.purge_complainant_contacts(now=NOW)

    purged = {"old_closed", "old_declined", "old_settled", "old_dispute"}
    assert result == {"cases": 4, "disputes": 1}
    for key, case in cases.items():
        name, phone, purged_at = contact(case)
        if key in purged:
            assert (name, phone, purged_at) == (None, None, NOW), key
        elif key != "anonymous":
            assert (name, phone, purged_at) == (NAME, PHONE, None), key
    old = db.session.get(Complaint, cases["old_closed"].id)
    assert (old.subject, old.status, old.resolved, old.category_id) == ("药房窗口排队太久", "closed", True,
                                                                         cases["recent_closed"].category_id)
    assert contact(cases["anonymous"]) == (None, None, None)  # nothing to purge, so not stamped


def test_the_purge_is_idempotent_and_audits_counts_only(cases, rmyy):
    first = retention.purge_complainant_contacts(now=NOW)
    second = retention.purge_complainant_contacts(now=NOW + timedelta(days=1))

    assert first["cases"] == 4 and second == {"cases": 0, "disputes": 0}
    assert contact(cases["old_closed"])[2] == NOW  # the first stamp stays
    (entry,) = db.session.scalars(select(AuditEntry)
                                  .where(AuditEntry.action == "complaints.purge_complainant_contacts"))
    assert entry.institution_id == rmyy.id and entry.actor_label == retention.SYSTEM
    assert entry.data == {"cases": 4, "disputes": 1, "retention_days": 365, "dispute_retention_days": 1095}
    assert NAME not in repr(entry.data) and PHONE not in repr(entry.data)


def test_each_institution_keeps_contacts_for_its_own_periods(cases, rmyy, zyy):
    db.session.add(ComplaintSettings(institution_id=rmyy.id, complainant_retention_days=730,
                                     dispute_retention_days=1200))
    short = add_case(zyy, received=days_ago(50), status="closed", closed_at=days_ago(40),
                     complainant_name=NAME, complainant_phone=PHONE)
    db.session.add(ComplaintSettings(institution_id=zyy.id, complainant_retention_days=30, dispute_retention_days=30))
    db.session.flush()

    result = retention.purge_complainant_contacts(now=NOW)

    assert result == {"cases": 1, "disputes": 0}
    assert contact(short)[:2] == (None, None)
    assert contact(cases["old_closed"])[:2] == (NAME, PHONE) and contact(cases["old_dispute"])[:2] == (NAME, PHONE)


def test_the_ledger_and_the_statistics_keep_a_purged_case(client, cases, rmyy):
    staff_login(client, "rmyy-officer")
    received = cases["old_closed"].received_at
    period = stats.parse_period(f"{received.year}-{received.month:02d}")
    before = stats.summaries([rmyy.id], period)[rmyy.id]

    retention.purge_complainant_contacts(now=NOW)
    db.session.commit()

    export = client.get(f"/i/{rmyy.id}/complaints/ledger/export.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(export.lstrip("\ufeff"))))
    table = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    row = table[cases["old_closed"].case_number]
    assert (row["状态"], row["事由"], row["主办科室"], row["投诉类别"]) == ("已办结", "药房窗口排队太久", "心血管内科",
                                                                  "服务态度")
    assert row["处理结果"] == "已解决：已增加高峰时段窗口。"
    assert len(table) == len(cases)
    after = stats.summaries([rmyy.id], period)[rmyy.id]
    assert (after.received, after.closed, after.resolution) == (before.received, before.closed, before.resolution)
    assert [case.case_number for case in ledger.iter_rows(rmyy, ledger.LedgerFilter())
            if case.id == cases["old_closed"].id]


def test_the_case_page_says_the_contact_was_purged(client, cases, rmyy):
    retention.purge_complainant_contacts(now=NOW)
    staff_login(client, "rmyy-officer")

    page = client.get(f"/i/{rmyy.id}/complaints/{cases['old_closed'].id}").get_data(as_text=True)

    assert "已按保留期限清除" in page and "已于 2027-12-01 自动清除" in page
    assert NAME not in page and PHONE not in page


def test_the_nightly_job_is_registered_commits_and_logs_counts_only(app, ctx, cases, caplog):
    from core.tasks import periodic_jobs

    job = next(j for j in periodic_jobs(app) if j.name == "complaints-contact-purge")
    assert job.cron == "45 2 * * *" and job.func is tasks.purge_complainant_contacts_job and job.queue == "low"

    with caplog.at_level(logging.INFO):
        result = tasks.purge_complainant_contacts_job(NOW.isoformat())

    assert result == {"cases": 4, "disputes": 1}
    db.session.rollback()  # what the job committed stays
    assert contact(cases["old_closed"])[:2] == (None, None)
    assert "4 cases, 1 of them disputes" in caplog.text
    assert PHONE not in caplog.text and NAME not in caplog.text


# The settings ----------------------------------------------------------------------------------

def form(**overrides):
    values = {"standard_days": "5", "complex_days": "10", "reminder_days_before": "1", "escalate_after_days": "0",
              "case_prefix": "TS", "feedback_valid_days": "7", "complainant_retention_days": "365",
              "dispute_retention_days": "1095"}
    values.update({k: str(v) for k, v in overrides.items()})
    return values


def test_the_defaults_are_a_year_and_three_years_for_disputes(rmyy):
    settings = complaint_settings(rmyy.id)

    assert (settings.complainant_retention_days, settings.dispute_retention_days) == (365, 1095)


def test_an_officer_sets_the_retention_periods_on_the_settings_page(client, rmyy):
    staff_login(client, "rmyy-officer")

    page = client.get(f"/i/{rmyy.id}/complaints/settings").get_data(as_text=True)
    response = client.post(f"/i/{rmyy.id}/complaints/settings",
                           data=form(complainant_retention_days=180, dispute_retention_days=1460))

    assert "投诉人姓名电话保留天数" in page and 'value="365"' in page and 'value="1095"' in page
    assert response.status_code == 302
    settings = complaint_settings(rmyy.id)
    assert (settings.complainant_retention_days, settings.dispute_retention_days) == (180, 1460)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "complaint_settings.update"))
    assert entry.data["complainant_retention_days"] == [365, 180]


@pytest.mark.parametrize("values, message", [
    ({"complainant_retention_days": 400, "dispute_retention_days": 300}, "医疗纠纷类投诉的保留天数不能短于一般投诉"),
    ({"complainant_retention_days": 5, "feedback_valid_days": 7}, "姓名电话的保留天数不能短于满意度回访链接的有效天数"),
    ({"complainant_retention_days": 0}, "数值大小必须介于 1 到 10950 之间"),
    ({"dispute_retention_days": 99999}, "数值大小必须介于 1 到 10950 之间"),
])
def test_retention_periods_that_break_a_rule_are_refused(client, rmyy, values, message):
    staff_login(client, "rmyy-officer")

    response = client.post(f"/i/{rmyy.id}/complaints/settings", data=form(**values))

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert complaint_settings(rmyy.id).complainant_retention_days == 365
