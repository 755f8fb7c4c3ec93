"""Monthly and quarterly complaint statistics: each rate equals a hand count (C15), declined cases stay
out of the denominators (C11), periods are Beijing-time months and quarters, and the regional
comparison is scoped to the admin's region."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from complaints import stats
from complaints.models import Status
from core.signing import hash_value
from organisation.models import Role
from tests.complaints.conftest import HAND, PHONE, add_case, at, end_of, staff_login
from tests.factories import make_institution, make_region, make_staff

OCTOBER = stats.Period("month", 2026, 10)


def summary(data, period=OCTOBER):
    return stats.summaries([data.rmyy.id], period)[data.rmyy.id]


# Periods -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, start, end", [
    ("2026-10", "month", date(2026, 10, 1), date(2026, 11, 1)),
    ("2026-12", "month", date(2026, 12, 1), date(2027, 1, 1)),
    ("2026Q4", "quarter", date(2026, 10, 1), date(2027, 1, 1)),
    ("2026q1", "quarter", date(2026, 1, 1), date(2026, 4, 1)),
])
def test_periods_are_months_and_quarters(ctx, text, kind, start, end):
    period = stats.parse_period(text)

    assert (period.kind, period.start, period.end) == (kind, start, end)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026Q5", "26-10", "abc", "1999-01", "2026-10-01", "2026 Q4"])
def test_bad_period_strings_are_refused(ctx, text):
    with pytest.raises(stats.PeriodError, match="统计期间"):
        stats.parse_period(text)


def test_period_bounds_are_beijing_midnights_and_shift_across_years(ctx):
    start, end = stats.parse_period("2026-10").bounds()

    assert start == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert end == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert stats.parse_period("2026-12").shifted(1).code == "2027-01"
    assert stats.parse_period("2026Q1").shifted(-1).code == "2025Q4"
    assert stats.parse_period("2026-11").other_kind().code == "2026Q4"


# Each rate equals a hand count (C15) ----------------------------------------------------------

def test_counts_match_the_hand_count(october_ledger):
    s = summary(october_ledger)

    assert (s.received, s.declined, s.registered, s.accepted, s.closed) == (
        HAND["received"], HAND["declined"], HAND["registered"], HAND["accepted"], HAND["closed"])


@pytest.mark.parametrize("rate", ["response", "resolution", "satisfaction", "on_time"])
def test_each_rate_equals_the_hand_count(october_ledger, rate):
    value = getattr(summary(october_ledger), rate)

    assert (value.numerator, value.denominator) == HAND[rate]


def test_median_handling_time_counts_chinese_working_days(october_ledger):
    s = summary(october_ledger)

    assert s.median_days == HAND["median_days"]
    assert s.handled == HAND["closed"]
    # A15 was received Thu 10-08 and closed Mon 10-12: Fri, the make-up Saturday and Mon make 3 working days.
    assert stats.working_days_between(date(2026, 10, 8), date(2026, 10, 12)) == 3


def test_declined_cases_are_listed_but_out_of_every_denominator(october_ledger):
    before = summary(october_ledger)
    rmyy = october_ledger.rmyy
    for i in range(3):  # declined, yet with a passed deadline, a late first response and an answer
        add_case(rmyy, status=Status.DECLINED.value, received=at(9 + i), decline_reason="in_mediation",
                 due_at=end_of(10), first_response_at=at(20), closed_at=at(20), satisfaction="unsatisfied")

    after = summary(october_ledger)
    report = stats.report(rmyy, OCTOBER)

    assert after.declined == before.declined + 3 and after.received == before.received + 3
    for rate in ("response", "resolution", "satisfaction", "on_time"):
        assert getattr(after, rate) == getattr(before, rate)
    assert len(report.declined_cases) == HAND["declined"] + 3
    assert ("已申请人民调解", 3) in report.decline_reasons


def test_cases_just_outside_the_month_in_beijing_time_are_not_counted(october_ledger):
    november = summary(october_ledger, stats.parse_period("2026-11"))
    september = summary(october_ledger, stats.parse_period("2026-09"))

    assert (november.received, september.received) == (1, 1)
    assert summary(october_ledger, stats.parse_period("2026Q4")).received == HAND["received"] + 1


def test_report_breaks_down_by_category_department_and_channel(october_ledger):
    report = stats.report(october_ledger.rmyy, OCTOBER)

    assert dict(report.by_category)["收费价格"] == 1
    assert dict(report.by_category)["服务态度"] == HAND["received"] - 2   # A3 is 医疗质量安全, A5 收费价格
    assert dict(report.by_department)["财务科"] == 1
    assert dict(report.by_channel)["12345 热线转办"] == 1
    assert sum(n for _name, n in report.by_status) == HAND["received"]
    assert report.topic_words[0] == ("态度", HAND["received"])


def test_repeat_complainants_are_counted_by_hashed_phone_never_shown(october_ledger):
    report = stats.report(october_ledger.rmyy, OCTOBER)
    cases = october_ledger.cases

    groups = {token: set(numbers) for token, numbers in report.repeat_complainants}
    token = stats.phone_token(PHONE)

    # PHONE (typed two ways, on a declined case too) and the fixture's default number on every other case.
    assert len(groups) == 2
    assert groups[token] == {cases["A1"].case_number, cases["A5"].case_number, cases["D2"].case_number}
    assert len(groups[stats.phone_token("13800000000")]) == HAND["received"] - 3
    assert len(token) == 8 and stats.phone_token("139 1234 5678") == token
    # The keyed hash of core.signing (its own purpose), not a hash made up here.
    assert token == hash_value("complainant-phone", PHONE)[:8]


# Pages -------------------------------------------------------------------------------------

def stats_url(data, period: str | None = "2026-10") -> str:
    return f"/i/{data.rmyy.id}/complaints/stats" + (f"?period={period}" if period is not None else "")


def test_stats_page_shows_the_rates_and_their_definitions(client, october_ledger):
    staff_login(client, "rmyy-leader")

    page = client.get(stats_url(october_ledger))

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "2026 年 10 月" in html
    assert "50.0%" in html and "6 / 12" in html          # on-time reply rate
    assert "56.2%" in html and "9 / 16" in html          # response rate
    assert "88.9%" in html and "8 / 9" in html           # resolution rate
    assert "66.7%" in html and "4 / 6" in html           # satisfaction rate
    assert "口径说明" in html and "不计入任何比率的分母" in html
    assert october_ledger.cases["D1"].case_number in html and "已向人民法院起诉" in html
    assert PHONE not in html and "张三丰" not in html


def test_quarter_page_and_default_period(client, october_ledger):
    staff_login(client, "rmyy-officer")

    assert "2026 年第 4 季度" in client.get(stats_url(october_ledger, "2026Q4")).get_data(as_text=True)
    assert client.get(stats_url(october_ledger, None)).status_code == 200


@pytest.mark.parametrize("period", ["2026-13", "2026Q9", "abc", "2026-1-1"])
def test_bad_period_on_the_page_is_a_400_with_a_chinese_message(client, october_ledger, period):
    staff_login(client, "rmyy-officer")

    page = client.get(stats_url(october_ledger, period))

    assert page.status_code == 400
    assert "统计期间" in page.get_data(as_text=True) and "无效" in page.get_data(as_text=True)


def test_stats_page_is_closed_to_handlers_and_other_hospitals(client, october_ledger):
    staff_login(client, "rmyy-handler")
    assert client.get(stats_url(october_ledger)).status_code == 403
    staff_login(client, "zyy-admin")
    assert client.get(stats_url(october_ledger)).status_code == 404


# The regional comparison ------------------------------------------------------------------

def region_url(region_id: int, period: str = "2026-10") -> str:
    return f"/admin/complaints/regions/{region_id}/stats?period={period}"


def test_regional_admin_compares_the_institutions_of_the_region(client, october_ledger):
    admin = staff_login(client, "region")

    page = client.get(region_url(admin.region.id))

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "示范一院" in html and "示范中医院" in html and "东风社区" in html
    assert "50.0%" in html                     # rmyy's on-time reply rate
    assert "三级 · 综合医院" in html and "二级 · 中医医院" in html  # grouped by peer class
    assert PHONE not in html and "张三丰" not in html and october_ledger.cases["A1"].case_number not in html


def test_regional_admin_home_redirects_to_the_own_region(client, october_ledger):
    admin = staff_login(client, "region")

    response = client.get("/admin/complaints/stats?period=2026Q4")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/complaints/regions/{admin.region.id}/stats?period=2026Q4")


def test_regional_admin_of_another_region_gets_404(client, october_ledger):
    other = make_region()
    make_institution(other)
    stranger = make_staff([Role.REGIONAL_ADMIN], region=other)
    rmyy_region = october_ledger.rmyy.region

    from tests.factories import login
    login(client, stranger)

    assert client.get(region_url(rmyy_region.id)).status_code == 404
    assert client.get(region_url(other.id)).status_code == 200
    assert client.get(f"/i/{october_ledger.rmyy.id}/complaints/stats").status_code == 404


def test_institution_staff_cannot_open_the_regional_comparison(client, october_ledger):
    staff_login(client, "rmyy-officer")

    assert client.get(region_url(october_ledger.rmyy.region_id)).status_code == 404
    assert client.get("/admin/complaints/stats").status_code == 404


def test_bad_period_on_the_regional_page_is_a_400(client, october_ledger):
    admin = staff_login(client, "region")

    page = client.get(region_url(admin.region.id, "2026-99"))

    assert page.status_code == 400 and "无效" in page.get_data(as_text=True)


def test_comparison_summarises_each_institution_in_its_peer_group(ctx, october_ledger):
    groups = stats.compare([october_ledger.zyy, october_ledger.rmyy], OCTOBER)

    assert [(g.level, g.category) for g in groups] == [("tertiary", "general"), ("secondary", "tcm")]
    rows = {inst.id: s for g in groups for inst, s in g.rows}
    assert (rows[october_ledger.rmyy.id].on_time.numerator, rows[october_ledger.rmyy.id].on_time.denominator) \
        == HAND["on_time"]
    assert rows[october_ledger.zyy.id].received == 1


def test_an_open_case_within_its_deadline_counts_against_the_response_rate_only(rmyy, categories):
    now = datetime.now(UTC)
    received = now - timedelta(minutes=5)
    add_case(rmyy, status="accepted", received=received, due_at=now + timedelta(days=5))
    local = received.astimezone(ZoneInfo("Asia/Shanghai"))

    s = stats.summaries([rmyy.id], stats.Period("month", local.year, local.month), now=now)[rmyy.id]

    assert (s.response.numerator, s.response.denominator) == (0, 1)
    assert s.on_time.denominator == 0 and str(s.on_time) == "—"
