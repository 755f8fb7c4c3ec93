"""The patient's page: /q/<token> from a QR code, in a phone browser, with JavaScript off.

What 适老化 and the issue ask of it is checked on the served page itself:
Chinese, one self-contained document (inline CSS under the CSP nonce, no
script, a data: favicon), at most 50 KB gzipped, body text >= 18 px, tap
targets >= 60 px; two taps rate a window; a retry never doubles a response.
"""
from __future__ import annotations

import gzip
import re

import pytest
from sqlalchemy import func, select

from core.extensions import db
from organisation import services
from survey import qr, versioning
from survey import tasks as survey_tasks
from survey.models import Channel, SurveyResponse

from .conftest import hidden_fields, open_form, stored, submission_id_of, submit, survey_path

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def page_text(response) -> str:
    return response.get_data(as_text=True)


def style_block(html: str) -> str:
    blocks = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert len(blocks) == 1
    return blocks[0]


def css_rules(css: str) -> list[tuple[str, str]]:
    """(selector, declarations) for every rule of the page's stylesheet, @media rules included.

    The @supports block only hides and shows conditional questions; it is skipped.
    """
    css = re.sub(r"@supports[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)
    css = re.sub(r"@media[^{]*\{", "", css)
    return [(sel.strip(), body) for sel, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)]


def rule(rules, selector: str) -> str:
    return next(body for sel, body in rules if sel == selector)


def px(value: str) -> float:
    """A CSS length in px; rem/em resolve against the browser default of 16 px (the root size is not set)."""
    number, unit = re.fullmatch(r"([\d.]+)(px|rem|em)", value.strip()).groups()
    return float(number) * (1 if unit == "px" else 16)


def response_count() -> int:
    return db.session.scalar(select(func.count()).select_from(SurveyResponse))


# The page ----------------------------------------------------------------------

def test_window_page_is_chinese_and_names_the_touchpoint(client, window_code):
    page = client.get(survey_path(window_code), headers=ZH)
    html = page_text(page)
    assert page.status_code == 200
    assert page.mimetype == "text/html" and page.mimetype_params["charset"] == "utf-8"
    assert '<html lang="zh-CN">' in html
    assert "门诊挂号收费 1 号窗口" in html and "锦江示范市第一人民医院" in html
    assert "您对本次窗口服务满意吗？" in html and "提交评价" in html
    for label in ("非常不满意", "不满意", "一般", "满意", "非常满意"):
        assert f"</svg>{label}</span>" in html
    assert page.headers["Cache-Control"] == "no-store"


def test_page_defaults_to_chinese_without_an_accept_language(client, window_code):
    html = page_text(client.get(survey_path(window_code)))
    assert '<html lang="zh-CN">' in html and "提交评价" in html


def test_inline_css_carries_the_csp_nonce_and_there_is_no_script(client, window_code):
    page = client.get(survey_path(window_code), headers=ZH)
    html = page_text(page)
    nonce = re.search(r'<style nonce="([^"]+)">', html).group(1)
    policy = page.headers["Content-Security-Policy"]
    assert f"style-src 'self' 'nonce-{nonce}'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script" not in html.lower()
    assert not re.search(r"\son[a-z]+\s*=", html, re.I)  # no inline event handlers either
    assert client.get(survey_path(window_code)).headers["Content-Security-Policy"] != policy  # fresh per response


def test_page_is_one_request(client, window_code):
    """Nothing else to fetch: the favicon is a data URL, CSS and faces are inline."""
    path = survey_path(window_code)
    html = page_text(client.get(path))
    assert '<link rel="icon" href="data:,">' in html
    references = re.findall(r'\s(?:src|href|srcset|poster|data)="([^"]*)"', html)
    assert references and all(ref.startswith("data:") for ref in references), references
    assert re.findall(r'<form[^>]*action="([^"]*)"', html) == [path]
    assert "url(" not in style_block(html) and "@import" not in style_block(html)


@pytest.mark.parametrize("code_fixture", ["window_code", "ward_code"])
def test_page_weighs_at_most_50_kb_gzipped(client, request, code_fixture):
    code = request.getfixturevalue(code_fixture)
    body = client.get(survey_path(code)).get_data()
    assert len(gzip.compress(body, compresslevel=6)) <= 50 * 1024


def test_css_sets_body_text_at_18px_or_more_and_line_height_1_3(client, window_code):
    rules = css_rules(style_block(page_text(client.get(survey_path(window_code)))))
    size, line_height = re.search(r"font:([\d.]+px)/([\d.]+)", rule(rules, "body")).groups()
    assert px(size) >= 18 and float(line_height) >= 1.3
    # No text anywhere on the page is set smaller than 18 px, nor tighter than 1.3 lines.
    for selector, body in rules:
        for value in re.findall(r"font-size:([^;}]+)", body):
            assert px(value) >= 18, (selector, value)
        for value in re.findall(r"line-height:([^;}]+)", body):
            assert float(value) >= 1.3, (selector, value)


def test_css_makes_every_tap_target_at_least_60px_high(client, window_code):
    rules = css_rules(style_block(page_text(client.get(survey_path(window_code)))))
    targets = [".opt span", ".faces .opt span", ".chips .opt span", ".btn", ".big", "textarea,input[type=tel]"]
    for selector in targets:
        heights = [re.search(r"min-height:([^;}]+)", body) for sel, body in rules if sel == selector]
        heights = [h.group(1) for h in heights if h]
        assert heights, selector
        assert all(px(h) >= 60 for h in heights), (selector, heights)


MEASURE = """
import json, sys
from playwright.sync_api import sync_playwright

html = sys.stdin.read()
out = {}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                args=["--no-sandbox", "--disable-dev-shm-usage"])
    for width in (360, 375):
        context = browser.new_context(viewport={"width": width, "height": 800}, is_mobile=True, has_touch=True,
                                      locale="zh-CN")
        page = context.new_page()
        page.set_content(html)
        targets = page.eval_on_selector_all(
            ".opt span, .btn", "els => els.filter(e => e.offsetParent)"
            ".map(e => {const r = e.getBoundingClientRect(); return [r.width, r.height]})")
        texts = page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.offsetParent &&"
            " [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))"
            ".map(e => [parseFloat(getComputedStyle(e).fontSize),"
            " parseFloat(getComputedStyle(e).lineHeight) / parseFloat(getComputedStyle(e).fontSize)])")
        out[width] = {"targets": targets, "texts": texts}
        context.close()
    browser.close()
print(json.dumps(out))
"""


@pytest.mark.browser
def test_rendered_tap_targets_are_60_by_60_and_text_18px_on_a_phone(client, window_code):
    """Laid out by chromium at 360 and 375 px wide (the five faces share one row).

    Measured in a child process: Playwright's sync API cannot start inside the
    browser tests' session-wide Playwright loop.
    """
    import json
    import subprocess
    import sys

    html = page_text(client.get(survey_path(window_code)))
    done = subprocess.run([sys.executable, "-c", MEASURE], input=html, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for width, found in json.loads(done.stdout).items():
        assert len(found["targets"]) >= 8  # five faces, yes and no, the button
        assert all(w >= 60 and h >= 60 for w, h in found["targets"]), (width, found["targets"])
        assert found["texts"] and all(size >= 18 and round(ratio, 2) >= 1.3 for size, ratio in found["texts"]), \
            (width, found["texts"])


def test_page_sets_a_device_cookie_once(client, window_code):
    first = client.get(survey_path(window_code))
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith("tj_d=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Set-Cookie" not in client.get(survey_path(window_code)).headers


# Submitting -----------------------------------------------------------------------

def test_two_taps_rate_a_window_and_land_on_thanks(client, window_code):
    fields = open_form(client, survey_path(window_code))
    assert set(fields) == {"submission_id", "form_token"}
    posted = submit(client, window_code, WIN_OVERALL="4")  # tap a face, tap 提交评价
    assert posted.status_code == 303
    submission_id = submission_id_of(posted)
    response = stored(submission_id)
    assert response.channel == Channel.TOUCHPOINT_QR
    assert response.touchpoint_id == window_code.touchpoint_id
    assert response.department_id == window_code.touchpoint.department_id
    assert response.code_id == window_code.id
    assert response.template_version_id == window_code.template.published.id
    assert response.overall_score == 75.0 and response.flags == [] and not response.excluded
    thanks = client.get(posted.headers["Location"])
    assert thanks.status_code == 200
    assert "评价已收到" in page_text(thanks)
    assert "<script" not in page_text(thanks).lower()


def test_thanks_page_for_a_low_rating_apologises(client, window_code):
    posted = submit(client, window_code, WIN_OVERALL="2", WIN_REASON=["R_WAIT"])
    assert "很抱歉这次没有让您满意" in page_text(client.get(posted.headers["Location"]))


@pytest.mark.parametrize("processed", [True, False])
@pytest.mark.parametrize("score, threshold, low", [("3", None, False), ("2", None, True), ("3", 50.0, True),
                                                    ("4", 50.0, False)])
def test_the_thank_you_page_says_forwarded_exactly_when_an_alert_is_raised(
        client, window_code, monkeypatch, processed, score, threshold, low):
    """One rule for a low rating: the page's apology and the alert agree (3 of 5 is not low by default)."""
    from survey import inbox
    from survey.models import RecoveryAlert, SurveySettings

    if threshold is not None:
        db.session.merge(SurveySettings(institution_id=window_code.institution_id, alert_threshold=threshold))
        db.session.flush()
    monkeypatch.setattr(inbox, "processes_inline", lambda: processed)
    posted = submit(client, window_code, WIN_OVERALL=score)
    page = page_text(client.get(posted.headers["Location"]))
    assert ("转给相关科室" in page) is low
    survey_tasks.drain_inbox()
    alert = db.session.scalar(select(RecoveryAlert).join(RecoveryAlert.response)
                              .where(RecoveryAlert.institution_id == window_code.institution_id))
    assert (alert is not None and "low_score" in alert.reasons) is low
    assert ("转给相关科室" in page_text(client.get(posted.headers["Location"]))) is low


def test_thanks_for_an_unknown_submission_is_404(client, builtin_templates):
    assert client.get("/thanks/0123456789abcdef0123").status_code == 404


def test_double_submit_stores_one_response_and_both_see_the_same_thanks(client, window_code):
    path = survey_path(window_code)
    fields = open_form(client, path)
    before = response_count()
    data = {**fields, "q_WIN_OVERALL": "5"}
    first = client.post(path, data=data)
    second = client.post(path, data=data)  # a double tap, or the browser retrying
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert response_count() == before + 1
    assert client.get(second.headers["Location"]).status_code == 200


def test_bad_option_value_is_400_in_chinese_and_keeps_the_answers(client, window_code):
    path = survey_path(window_code)
    fields = open_form(client, path)
    before = response_count()
    page = client.post(path, data={**fields, "q_WIN_OVERALL": "9", "q_WIN_COMMENT": "排队太久了",
                                   "q_WIN_CONTACT": "yes", "contact_phone": "13800138000"})
    html = page_text(page)
    assert page.status_code == 400
    assert "选项无效，请重新选择。" in html
    assert ">排队太久了</textarea>" in html
    assert 'value="yes" checked' in html and 'value="13800138000"' in html
    assert hidden_fields(html)["submission_id"] == fields["submission_id"]  # a retry is still one response
    assert response_count() == before


def test_missing_required_rating_is_400(client, window_code):
    path = survey_path(window_code)
    fields = open_form(client, path)
    page = client.post(path, data={**fields, "q_WIN_COMMENT": "没有评分"})
    assert page.status_code == 400
    assert "请选择一项。" in page_text(page)
    assert stored(fields["submission_id"]) is None


def test_bad_contact_phone_is_400_and_nothing_is_stored(client, window_code):
    path = survey_path(window_code)
    fields = open_form(client, path)
    page = client.post(path, data={**fields, "q_WIN_OVERALL": "1", "q_WIN_CONTACT": "yes", "contact_phone": "12345"})
    assert page.status_code == 400
    assert "电话号码格式不正确" in page_text(page)
    assert stored(fields["submission_id"]) is None


def test_invalid_submission_id_is_400(client, window_code):
    path = survey_path(window_code)
    fields = open_form(client, path)
    page = client.post(path, data={**fields, "submission_id": "short", "q_WIN_OVERALL": "5"})
    assert page.status_code == 400
    assert "提交编号无效" in page_text(page)


# Codes that cannot be used ----------------------------------------------------------

def test_retired_code_is_410_with_a_friendly_page(client, window_code, ctx):
    old_path = survey_path(window_code)
    new_code = qr.rotate_code(window_code.touchpoint, actor="test")
    before = response_count()
    page = client.get(old_path)
    assert page.status_code == 410
    assert "此二维码已更换" in page_text(page) and "请扫描服务点张贴的最新二维码" in page_text(page)
    assert client.post(old_path, data={"q_WIN_OVERALL": "5"}).status_code == 410
    assert response_count() == before
    assert client.get(survey_path(new_code)).status_code == 200


def test_forged_signature_is_404(client, window_code):
    value, _, sig = qr.path_token(window_code).partition("-")
    forged = "a" * len(sig) if sig != "a" * len(sig) else "b" * len(sig)
    page = client.get(f"/q/{value}-{forged}")
    assert page.status_code == 404
    assert "二维码无法识别" in page_text(page)
    assert client.get(f"/q/{value}").status_code == 404
    assert client.post(f"/q/{value}-{forged}", data={"q_WIN_OVERALL": "5"}).status_code == 404


def test_inactive_touchpoint_is_410(client, window_code, ctx):
    services.set_active(window_code.touchpoint, False, actor="test")
    page = client.get(survey_path(window_code))
    assert page.status_code == 410
    assert "该服务点已停用" in page_text(page)


def test_template_without_a_published_version_is_503(client, window_code, builtin_templates, rmyy):
    draft_only = versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_DRAFT", name="草稿", actor="test")
    qr.set_template(window_code, draft_only, actor="test")
    page = client.get(survey_path(window_code))
    assert page.status_code == 503
    assert "评价暂未开放" in page_text(page)


# Rate limits --------------------------------------------------------------------------

def test_device_limit_answers_429_in_chinese(client, new_client, window_code, monkeypatch, app):
    monkeypatch.setitem(app.config, "SURVEY_DEVICE_LIMIT", "2 per minute")
    assert submit(client, window_code, WIN_OVERALL="5").status_code == 303
    assert submit(client, window_code, WIN_OVERALL="5").status_code == 303
    limited = submit(client, window_code, WIN_OVERALL="5")
    assert limited.status_code == 429
    assert "提交过于频繁" in page_text(limited)
    assert 0 < int(limited.headers["Retry-After"]) <= 60  # until this minute's window ends
    assert "staff.css" not in page_text(limited)  # the patient's own page style, not the staff error page
    # Another phone on the same hospital Wi-Fi is not affected.
    neighbour = new_client(client.environ_base["REMOTE_ADDR"])
    assert submit(neighbour, window_code, WIN_OVERALL="5").status_code == 303


def test_ip_limit_applies_across_devices(new_client, window_code, monkeypatch, app):
    monkeypatch.setitem(app.config, "SURVEY_IP_LIMIT", "3 per minute")
    phones = [new_client("10.250.1.1") for _ in range(4)]
    statuses = [submit(phone, window_code, WIN_OVERALL="4").status_code for phone in phones]
    assert statuses == [303, 303, 303, 429]


def test_viewing_the_page_is_not_rate_limited(client, window_code, monkeypatch, app):
    monkeypatch.setitem(app.config, "SURVEY_DEVICE_LIMIT", "1 per minute")
    assert [client.get(survey_path(window_code)).status_code for _ in range(3)] == [200, 200, 200]
