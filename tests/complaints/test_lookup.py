"""The complainant's progress lookup: case number + code, no existence oracle, lockout (check C9)."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from complaints import lookup
from complaints.models import CaseEvent, Reply, Status
from core import backoff
from core.extensions import db
from tests.complaints.conftest import post_complaint
from tests.factories import demo_user

NONCE = re.compile(r'nonce="[^"]*"')


# Lockout counters outlive the rolled-back rows (case numbers repeat between tests): each test starts clean.
pytestmark = pytest.mark.usefixtures("fresh_lockouts")


def failures(key: str) -> int:
    """The failures counted on a slowing key (core.backoff)."""
    return backoff._read([key])[0][0]


def ask(client, institution, number: str, code: str):
    return client.post("/c/lookup", data={"institution": str(institution.id), "case_number": number, "code": code})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_right_number_and_code_show_the_stage_and_dates_only(client, rmyy, make_case):
    case = make_case(received_at=datetime(2026, 9, 30, 9, 0, tzinfo=UTC),
                     description="内部可见的投诉经过", complainant_name="张三")
    case.events.append(CaseEvent(action="note", note="内部备注：当事护士已谈话", actor_label="rmyy-officer"))
    response = ask(client, rmyy, case.case_number, case.plain_lookup_code)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert case.case_number in html and "已收到，等待受理" in html and "2026-09-30" in html
    officer = demo_user("rmyy-officer")
    for secret in ("内部可见的投诉经过", "内部备注", "张三", "13912345678", officer.username, officer.display_name):
        assert secret not in html
    assert response.headers["Cache-Control"] == "no-store" and "<script" not in html


def test_a_wrong_code_and_a_wrong_number_get_the_same_answer(client, new_client, rmyy, make_case):
    case = make_case()
    bad_code = ask(client, rmyy, case.case_number, wrong(case.plain_lookup_code))
    missing = case.case_number[:-1] + ("9" if case.case_number[-1] != "9" else "8")
    bad_number = ask(new_client(), rmyy, missing, case.plain_lookup_code)
    assert bad_code.status_code == bad_number.status_code == 404

    def page(response, number):
        return NONCE.sub("", response.get_data(as_text=True)).replace(number, "N")

    assert page(bad_code, case.case_number) == page(bad_number, missing)
    assert "没有查到" in bad_code.get_data(as_text=True)


def test_c9_five_wrong_codes_slow_the_case_number_down_and_never_lock_it(client, new_client, rmyy, make_case,
                                                                         monkeypatch):
    """A stranger who knows a case number cannot shut the complainant out: past five failures from anywhere
    the case's tries are slowed (a pause that doubles, at most three minutes), never locked."""
    case = make_case()
    clock = [1_000_000.0]
    monkeypatch.setattr(lookup, "now", lambda: clock[0])
    monkeypatch.setattr(backoff, "_clock", lambda: clock[0])  # the case's slow-down
    strangers = [new_client(f"10.77.{n}.9") for n in range(8)]  # a phone and a network each
    for stranger in strangers[:5]:
        assert ask(stranger, rmyy, case.case_number, wrong(case.plain_lookup_code)).status_code == 404
        clock[0] += 1
    slowed = ask(client, rmyy, case.case_number, case.plain_lookup_code)
    html = slowed.get_data(as_text=True)
    assert slowed.status_code == 429 and "已收到" not in html and int(slowed.headers["Retry-After"]) <= 2
    clock[0] += 2
    opened = ask(client, rmyy, case.case_number, case.plain_lookup_code)
    assert opened.status_code == 200 and "已收到，等待受理" in opened.get_data(as_text=True)
    # A guesser keeps failing: the pause grows, to three minutes at most.
    for stranger in strangers:
        response = ask(stranger, rmyy, case.case_number, wrong(case.plain_lookup_code))
        clock[0] += int(response.headers.get("Retry-After", 0))
        assert ask(stranger, rmyy, case.case_number, wrong(case.plain_lookup_code)).status_code in (404, 429)
    waits = [lookup.CASE_SLOW.delay(n) for n in range(5, 20)]
    assert waits[0] == 2 and max(waits) == 180


def test_a_client_guessing_across_case_numbers_is_locked_too(client, new_client, rmyy, make_case):
    case = make_case()
    client.get("/c/lookup")  # a phone opens the page first (and gets its device cookie)
    for n in range(5):
        assert ask(client, rmyy, f"TS2026-{90000 + n}", "123456").status_code == 404
    assert ask(client, rmyy, case.case_number, case.plain_lookup_code).status_code == 429
    assert ask(new_client(), rmyy, case.case_number, case.plain_lookup_code).status_code == 200


def test_the_lookup_counts_a_client_by_the_rate_limits_device_key(new_client, rmyy, monkeypatch):
    seen = []
    real = lookup.lockout_keys
    monkeypatch.setattr(lookup, "lockout_keys", lambda i, n, who, net: seen.append(who) or real(i, n, who, net))
    ask(new_client("10.250.9.9"), rmyy, "TS2026-70000", "123456")  # no device cookie yet: the address counts
    assert seen == ["d:10.250.9.9"]  # core.public.device_key, as the intake form's device limit


@pytest.fixture
def clock(monkeypatch):
    """The lockout's clock, moved by the test."""
    now = [1_000_000.0]
    monkeypatch.setattr(lookup, "now", lambda: now[0])
    monkeypatch.setattr(backoff, "_clock", lambda: now[0])  # the case's and the network's slow-down
    return now


def guess_from_network(new_client, rmyy, tries: int, clock: list[float], *, first: int = 0) -> None:
    """``tries`` wrong look-ups from phones on one network (10.250.3.x), four per phone (under each phone's own
    limit), each waiting out the network's pause first."""
    phone = None
    for n in range(first, first + tries):
        if n % 4 == 0 or phone is None:
            phone = new_client(f"10.250.3.{n // 4 + 1}")
            phone.get("/c/lookup")
        response = ask(phone, rmyy, f"TS2026-{80000 + n}", "123456")
        if response.status_code == 429:
            clock[0] += int(response.headers["Retry-After"])
            response = ask(phone, rmyy, f"TS2026-{80000 + n}", "123456")
        assert response.status_code == 404


def test_a_busy_network_is_slowed_not_locked_and_the_right_code_gets_through(new_client, rmyy, make_case, clock):
    case = make_case()
    guess_from_network(new_client, rmyy, 20, clock)  # twenty failures: the old lock, now a two-second pause
    latecomer = new_client("10.250.3.99")
    latecomer.get("/c/lookup")
    slowed = ask(latecomer, rmyy, case.case_number, case.plain_lookup_code)
    html = slowed.get_data(as_text=True)
    assert slowed.status_code == 429 and slowed.headers["Retry-After"] == "2"
    assert "请 2 秒后再点“查询”" in html and "不会锁定" in html and "已收到" not in html
    assert case.plain_lookup_code not in html  # the code is never echoed back
    clock[0] += 2
    through = ask(latecomer, rmyy, case.case_number, case.plain_lookup_code)
    assert through.status_code == 200 and "已收到，等待受理" in through.get_data(as_text=True)
    elsewhere = new_client("10.251.3.99")  # another network was never slowed
    assert ask(elsewhere, rmyy, case.case_number, case.plain_lookup_code).status_code == 200


def test_each_further_failure_doubles_the_pause_up_to_a_minute(new_client, rmyy, clock):
    guess_from_network(new_client, rmyy, 20, clock)
    waits = []
    for n in range(8):
        phone = new_client(f"10.250.3.{100 + n}")
        phone.get("/c/lookup")
        refused = ask(phone, rmyy, "TS2026-90000", "123456")
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        waits.append(wait)
        clock[0] += wait
        assert ask(phone, rmyy, f"TS2026-{90001 + n}", "123456").status_code == 404  # checked, and wrong
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


def test_a_try_during_the_pause_is_neither_checked_nor_counted(new_client, rmyy, make_case, clock):
    case = make_case()
    guess_from_network(new_client, rmyy, 20, clock)
    phone = new_client("10.250.3.120")
    for _ in range(10):  # hammering during the pause does not lengthen it, nor count against the case
        assert ask(phone, rmyy, case.case_number, wrong(case.plain_lookup_code)).status_code == 429
    keys = lookup.lockout_keys(rmyy.id, case.case_number, "x", "n:10.250.3")
    assert failures(keys[0][0]) == 0 and failures(keys[2][0]) == 20
    clock[0] += 2
    assert ask(phone, rmyy, case.case_number, case.plain_lookup_code).status_code == 200


def test_fifteen_quiet_minutes_give_the_network_a_fresh_start(new_client, rmyy, make_case, clock):
    case = make_case()
    guess_from_network(new_client, rmyy, 25, clock)
    phone = new_client("10.250.3.130")
    assert ask(phone, rmyy, case.case_number, case.plain_lookup_code).headers["Retry-After"] == "60"
    clock[0] += 15 * 60
    guess_from_network(new_client, rmyy, 19, clock, first=200)  # counted afresh: nineteen more do not slow it yet
    assert ask(phone, rmyy, case.case_number, case.plain_lookup_code).status_code == 200


def test_a_phone_that_looked_its_case_up_before_is_not_slowed_for_that_case(new_client, rmyy, make_case, clock):
    case, other = make_case(), make_case()
    mine = new_client("10.250.3.140")
    mine.get("/c/lookup")
    assert ask(mine, rmyy, case.case_number, case.plain_lookup_code).status_code == 200
    guess_from_network(new_client, rmyy, 30, clock)  # then the ward's Wi-Fi is slowed to a try a minute
    for _ in range(3):
        assert ask(mine, rmyy, case.case_number, case.plain_lookup_code).status_code == 200
    assert ask(mine, rmyy, other.case_number, other.plain_lookup_code).status_code == 429  # not for another case
    stranger = new_client("10.250.3.141")  # another phone with the right code waits like everyone else
    stranger.get("/c/lookup")
    assert ask(stranger, rmyy, case.case_number, case.plain_lookup_code).status_code == 429


def test_the_phone_that_filed_the_complaint_gets_through_a_slowed_network(new_client, rmyy, categories, clock):
    phone = new_client("10.250.3.150")
    receipt, _ = post_complaint(phone, rmyy)
    html = receipt.get_data(as_text=True)
    number = re.search(r'<dd class="code">([^<]+)<', html).group(1)
    code = re.search(r'class="code pin">(\d{6})<', html).group(1)
    guess_from_network(new_client, rmyy, 30, clock)
    assert ask(phone, rmyy, number, code).status_code == 200
    other_phone = new_client("10.250.3.151")
    other_phone.get("/c/lookup")
    assert ask(other_phone, rmyy, number, code).status_code == 429


def test_strangers_guessing_a_case_never_slow_the_complainants_own_phone(new_client, rmyy, make_case, clock):
    """The phone that looked the case up (or showed its receipt) goes straight through, however many strangers
    on other networks got the code wrong; a new phone with the right code waits out the case's pause."""
    case = make_case()
    mine = new_client("10.250.3.160")
    mine.get("/c/lookup")
    assert ask(mine, rmyy, case.case_number, case.plain_lookup_code).status_code == 200
    for n in range(12):
        ask(new_client(f"10.251.{n}.9"), rmyy, case.case_number, wrong(case.plain_lookup_code))
    other = new_client("10.252.0.9")
    other.get("/c/lookup")
    assert ask(other, rmyy, case.case_number, case.plain_lookup_code).status_code == 429
    assert ask(mine, rmyy, case.case_number, case.plain_lookup_code).status_code == 200


def test_a_locked_number_that_does_not_exist_looks_the_same_as_one_that_does(new_client, rmyy, make_case):
    case = make_case()
    missing = "TS2026-99999"
    for number in (case.case_number, missing):
        for _ in range(5):
            ask(new_client(), rmyy, number, "000000")
    real = ask(new_client(), rmyy, case.case_number, "000000")
    fake = ask(new_client(), rmyy, missing, "000000")
    assert real.status_code == fake.status_code == 429
    assert NONCE.sub("", real.get_data(as_text=True)).replace(case.case_number, "N") == \
        NONCE.sub("", fake.get_data(as_text=True)).replace(missing, "N")


def test_a_right_answer_clears_the_case_numbers_count(client, rmyy, make_case):
    case = make_case()
    for _ in range(4):
        ask(client, rmyy, case.case_number, wrong(case.plain_lookup_code))
    assert ask(client, rmyy, case.case_number, case.plain_lookup_code).status_code == 200
    keys = lookup.lockout_keys(rmyy.id, case.case_number, "x", "y")
    assert failures(keys[0][0]) == 0


def test_another_hospitals_case_is_not_found_with_this_hospital(client, rmyy, zyy, make_case):
    theirs = make_case(institution=zyy)
    assert ask(client, rmyy, theirs.case_number, theirs.plain_lookup_code).status_code == 404
    assert ask(client, zyy, theirs.case_number, theirs.plain_lookup_code).status_code == 200


@pytest.mark.parametrize("typed", ["ts2026-1", "ＴＳ２０２６－０００１", " TS 2026 00001 "])
def test_case_numbers_typed_loosely_are_understood(client, rmyy, make_case, typed):
    case = make_case(received_at=datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    assert case.case_number == "TS2026-00001"
    code = "".join(chr(ord(c) + 0xFEE0) for c in case.plain_lookup_code)  # full-width digits
    assert ask(client, rmyy, typed, code).status_code == 200


def test_the_due_date_is_shown_and_marked_provisional_when_the_year_is_not_announced(client, rmyy, make_case):
    case = make_case()
    case.status = Status.IN_HANDLING.value
    case.due_date = date(2027, 1, 7)
    case.deadline_provisional = True
    html = ask(client, rmyy, case.case_number, case.plain_lookup_code).get_data(as_text=True)
    assert "正在调查处理" in html and "2027-01-07" in html and "暂定" in html
    case.deadline_provisional = False
    html = ask(client, rmyy, case.case_number, case.plain_lookup_code).get_data(as_text=True)
    assert "2027-01-07" in html and "暂定" not in html


def test_only_a_sent_reply_is_shown_and_the_latest_one(client, rmyy, make_case):
    case = make_case()
    officer = demo_user("rmyy-officer")
    case.status = Status.REPLY_APPROVED.value
    db.session.add(Reply(complaint_id=case.id, number=1, body="草稿：尚未审核的答复", status="approved",
                         drafted_by_id=officer.id))
    db.session.flush()
    html = ask(client, rmyy, case.case_number, case.plain_lookup_code).get_data(as_text=True)
    assert "草稿" not in html and "正在准备答复" in html
    sent_at = datetime(2026, 10, 12, 3, 0, tzinfo=UTC)
    db.session.add_all([
        Reply(complaint_id=case.id, number=2, body="第一次答复", status="sent", drafted_by_id=officer.id,
              sent_at=sent_at),
        Reply(complaint_id=case.id, number=3, body="经重新调查，向您致歉并退还多收的 20 元。", status="sent",
              drafted_by_id=officer.id, sent_at=sent_at.replace(day=20)),
    ])
    case.status = Status.REPLIED.value
    html = ask(client, rmyy, case.case_number, case.plain_lookup_code).get_data(as_text=True)
    assert "退还多收的 20 元" in html and "第一次答复" not in html and "2026-10-20" in html
    assert "草稿" not in html and officer.display_name not in html


def test_a_declined_case_shows_the_notice_the_complainant_is_owed(client, rmyy, make_case):
    case = make_case()
    case.status = Status.DECLINED.value
    case.decline_reason = "in_court"
    case.decline_notice = "您已就此事向人民法院起诉，依照规定本院不再受理，请按司法程序办理。"
    html = ask(client, rmyy, case.case_number, case.plain_lookup_code).get_data(as_text=True)
    assert "不予受理" in html and "向人民法院起诉" in html


def test_a_paused_case_says_the_clock_stands_still(client, rmyy, make_case):
    case = make_case()
    case.status = Status.IN_HANDLING.value
    case.paused_since = datetime.now(UTC)
    case.pause_reason = "awaiting_material"
    html = ask(client, rmyy, case.case_number, case.plain_lookup_code).get_data(as_text=True)
    assert "等待您补充材料" in html


def test_a_merged_away_case_shows_the_case_it_joined(client, rmyy, make_case):
    kept = make_case()
    merged = make_case()
    kept.status = Status.IN_HANDLING.value
    merged.merged_into_id = kept.id
    html = ask(client, rmyy, merged.case_number, merged.plain_lookup_code).get_data(as_text=True)
    assert merged.case_number in html and "合并处理" in html and "正在调查处理" in html


@pytest.mark.parametrize("status, stage", [
    ("registered", "已收到，等待受理"), ("accepted", "已受理，正在处理"), ("transferred", "正在调查处理"),
    ("reply_drafted", "正在准备答复"), ("replied", "已答复"), ("closed", "已办结"), ("settled", "已当场处理办结"),
    ("reopened", "正在重新处理"),
])
def test_every_status_has_a_patient_friendly_stage(make_case, status, stage):
    case = make_case()
    case.status = status
    assert lookup.public_status(case).stage == stage


def test_the_lookup_page_opens_for_the_hospital_with_the_number_filled_in(client, rmyy, zyy):
    page = client.get(f"/c/lookup?i={rmyy.id}&n=ts2026-42")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and rmyy.name in html and 'value="TS2026-00042"' in html
    assert f'name="institution" value="{rmyy.id}"' in html and "<select" not in html
    chooser = client.get("/c/lookup").get_data(as_text=True)
    assert "<select" in chooser and rmyy.name in chooser and zyy.name in chooser


def test_bad_lookup_input_is_a_400_in_chinese(client, rmyy):
    response = ask(client, rmyy, "", "12ab")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "请填写案件编号" in html and "查询码是 6 位数字" in html
    missing_hospital = client.post("/c/lookup", data={"case_number": "TS2026-00001", "code": "123456"})
    assert missing_hospital.status_code == 400 and "请选择医院" in missing_hospital.get_data(as_text=True)
    # The select's "请选择" sends an empty value: the hospital is asked for, the code is not blamed.
    unchosen = client.post("/c/lookup", data={"institution": "", "case_number": "TS2026-00001", "code": "123456"})
    html = unchosen.get_data(as_text=True)
    assert unchosen.status_code == 400 and "请选择医院" in html and "没有查到" not in html


def test_the_receipt_leads_to_a_working_lookup(client, rmyy, categories):
    receipt, _ = post_complaint(client, rmyy)
    html = receipt.get_data(as_text=True)
    code = re.search(r'class="code pin">(\d{6})<', html).group(1)
    link = re.search(r'href="(/c/lookup\?[^"]+)"', html).group(1).replace("&amp;", "&")
    page = client.get(link).get_data(as_text=True)
    number = re.search(r'name="case_number"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="case_number"', page)
    assert ask(client, rmyy, number.group(1), code).status_code == 200


# On a real phone -------------------------------------------------------------------------------

def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def _targets_are_big(page, selector: str) -> None:
    for box in page.eval_on_selector_all(selector, "els => els.map(e => e.getBoundingClientRect().height)"):
        assert box >= 60, selector


@pytest.mark.browser
def test_on_a_phone_a_complaint_is_filed_and_its_progress_looked_up(app, live_server, shots, tmp_path):
    from complaints.categories import default_categories
    from tests.complaints.conftest import in_browser
    from tests.factories import demo_institution

    with app.app_context():
        default_categories(actor="test")
        institution_id = demo_institution("rmyy").id
        db.session.commit()
    from tests.complaints.conftest import photo as make_photo

    photo = tmp_path / "收据.jpg"
    photo.write_bytes(make_photo("jpg", (1200, 1600), noise=True))
    seen: dict[str, str] = {}

    def file_a_complaint(phone):
        requests = []
        phone.on("request", lambda r: requests.append(r.url))
        phone.goto(f"{live_server}/c/{institution_id}/new")
        assert phone.title().startswith("我要投诉")  # the page, and the script file of its character counters
        assert [r.rsplit("/", 2)[-2:] for r in requests[1:]] == [["js", "text_limits.js"]], requests
        assert phone.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 18
        _no_sideways_scroll(phone)
        _targets_are_big(phone, ".opt span")
        _targets_are_big(phone, "button.btn")
        phone.get_by_text("收费价格", exact=True).tap()
        phone.get_by_label("请说说发生了什么").fill("10月8日上午在门诊 2 号收费窗口缴费，被多收了 20 元检查费，"
                                                    "窗口说不归他们管。")
        phone.get_by_label("您希望我们怎么处理？").fill("退还多收的费用，并给个说法。")
        phone.set_input_files("input[type=file]", str(photo))
        phone.get_by_label("联系电话（建议填写，便于答复您）").fill("13912345678")
        phone.screenshot(path=str(shots / "complaint-form.png"), full_page=True)
        phone.get_by_role("button", name="提交投诉").tap()
        phone.wait_for_selector("text=投诉已提交")
        _no_sideways_scroll(phone)
        phone.screenshot(path=str(shots / "complaint-receipt.png"), full_page=True)
        seen["number"] = phone.inner_text("dd.code:not(.pin)").strip()
        seen["code"] = phone.inner_text("dd.code.pin").strip()
        assert re.fullmatch(r"TS\d{4}-\d{5}", seen["number"]) and re.fullmatch(r"\d{6}", seen["code"])

        phone.get_by_role("link", name="查询处理进度").tap()
        phone.wait_for_selector("input[name=code]")
        assert phone.input_value("input[name=case_number]") == seen["number"]
        phone.screenshot(path=str(shots / "complaint-lookup-form.png"), full_page=True)
        phone.fill("input[name=code]", seen["code"])
        phone.get_by_role("button", name="查询").tap()
        phone.wait_for_selector("text=已收到，等待受理")
        _no_sideways_scroll(phone)
        phone.screenshot(path=str(shots / "complaint-lookup-result.png"), full_page=True)

    in_browser(file_a_complaint)

    with app.app_context():  # the hospital answers
        from complaints.models import Complaint

        case = db.session.scalar(select(Complaint).where(Complaint.case_number == seen["number"],
                                                         Complaint.institution_id == institution_id))
        assert case.channel == "self_service" and case.complainant_phone == "13912345678"
        officer = demo_user("rmyy-officer")
        officer_name = officer.display_name
        case.status = Status.REPLIED.value
        db.session.add(Reply(complaint_id=case.id, number=1, status="sent", drafted_by_id=officer.id,
                             sent_at=datetime.now(UTC),
                             body="您好！经核实，10月8日门诊收费处确有重复收取检查费 20 元的情况，"
                                  "已于今日原路退还。我们已对当班人员进行批评教育，并在收费窗口张贴退费指引。"
                                  "感谢您的监督。"))
        db.session.commit()

    def read_the_reply(phone):
        phone.goto(f"{live_server}/c/lookup?i={institution_id}")
        phone.fill("input[name=case_number]", seen["number"].lower())
        phone.fill("input[name=code]", seen["code"])
        phone.get_by_role("button", name="查询").tap()
        phone.wait_for_selector("text=医院答复")
        assert "原路退还" in phone.content() and officer_name not in phone.inner_text("main")
        _no_sideways_scroll(phone)
        phone.screenshot(path=str(shots / "complaint-lookup-replied.png"), full_page=True)

    in_browser(read_the_reply)


def test_the_lookup_still_answers_and_counts_tries_while_redis_is_down(app, client, rmyy, make_case, monkeypatch):
    import redis as redis_lib

    case = make_case()
    code = case.plain_lookup_code

    class DownRedis:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise redis_lib.ConnectionError("Redis is down")
            return fail

    monkeypatch.setitem(app.extensions, "redis", DownRedis())
    answers = [ask(client, rmyy, case.case_number, wrong(code)).status_code for _ in range(6)]
    assert 500 not in answers
    # The sixth try is refused by the in-process counter, even with the right code.
    locked = ask(client, rmyy, case.case_number, code)
    assert locked.status_code != 500 and "已收到，等待受理" not in locked.get_data(as_text=True)
