"""End to end in a real browser: scan, rate, see it in the staff view; admin logs in and manages."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from core.extensions import db
from organisation.demo import DEMO_PASSWORD
from organisation.models import Touchpoint
from survey import qr, versioning
from survey.models import SurveyResponse
from tests.factories import demo_institution

pytestmark = pytest.mark.browser


@pytest.fixture
def window_url(app, live_server):
    with app.app_context():
        versioning.install_builtin_templates(actor="test")
        institution = demo_institution("rmyy")
        touchpoint = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                                                Touchpoint.code == "W-GH-02"))
        code = qr.ensure_code(touchpoint, actor="test")
        db.session.commit()
        return live_server + "/q/" + qr.path_token(code), touchpoint.id, institution.id


def response_count(app, touchpoint_id: int, *, counted_only: bool = False) -> int:
    with app.app_context():
        query = select(func.count()).select_from(SurveyResponse).where(SurveyResponse.touchpoint_id == touchpoint_id)
        if counted_only:
            query = query.where(SurveyResponse.excluded.is_(False))
        return db.session.scalar(query)


def test_patient_rates_a_window_in_two_taps_and_the_officer_sees_it(app, live_server, window_url, phone, desktop,
                                                                      shots):
    url, touchpoint_id, institution_id = window_url
    requests = []
    phone.on("request", lambda r: requests.append(r.url))
    phone.goto(url)
    assert phone.title() == "窗口服务评价"
    assert len(requests) == 1  # HTML with inline CSS and SVG: nothing else to fetch
    body_px = phone.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert body_px >= 18
    face = phone.get_by_text("非常满意", exact=True)
    box = face.locator("xpath=..").bounding_box()
    assert box["width"] >= 60 and box["height"] >= 60
    phone.wait_for_timeout(2100)  # a person takes longer than the minimum fill time
    face.tap()
    phone.screenshot(path=str(shots / "patient-window.png"), full_page=True)
    phone.get_by_role("button", name="提交评价").tap()
    phone.wait_for_url("**/thanks/*")
    assert "评价已收到" in phone.content()
    phone.screenshot(path=str(shots / "patient-thanks.png"))
    assert response_count(app, touchpoint_id) == 1

    desktop.goto(live_server + "/login")
    desktop.get_by_label("用户名").fill("rmyy-officer")
    desktop.get_by_label("密码").fill(DEMO_PASSWORD)
    desktop.get_by_role("button", name="登录").click()
    desktop.goto(f"{live_server}/i/{institution_id}/survey/responses?touchpoint_id={touchpoint_id}")
    rows = desktop.locator("table.table tbody tr")
    assert rows.count() == 1
    assert "门诊挂号收费 2 号窗口" in rows.first.inner_text()
    assert "100" in rows.first.inner_text()
    desktop.screenshot(path=str(shots / "officer-responses.png"), full_page=True)


def test_double_tap_and_back_resubmit_count_one_rating(app, live_server, window_url, phone):
    url, touchpoint_id, _ = window_url
    phone.goto(url)
    phone.wait_for_timeout(2100)
    phone.get_by_text("满意", exact=True).tap()
    button = phone.get_by_role("button", name="提交评价")
    # Two taps in quick succession, then the browser's back button and a third submit of the same form.
    button.dblclick()
    # The second tap aborts the first tap's navigation (net::ERR_ABORTED), so wait for where the page
    # ends up rather than for one navigation event.
    expect(phone).to_have_url(re.compile(r"/thanks/[0-9a-f]+$"), timeout=10_000)
    phone.go_back()
    if phone.get_by_role("button", name="提交评价").count():
        phone.get_by_role("button", name="提交评价").tap()
        # wait for the answer to this POST (the same thank-you page): the live server shares the test's
        # database connection, so counting while it still handles the POST would race it
        expect(phone).to_have_url(re.compile(r"/thanks/[0-9a-f]+$"), timeout=10_000)
        phone.wait_for_load_state()
    # the double tap is one submission; Back reloads the form (no-store) with a new submission id, so a
    # third submit is a second rating from this device within the hour: kept, flagged and not counted
    assert response_count(app, touchpoint_id, counted_only=True) == 1
    assert response_count(app, touchpoint_id) <= 2


def test_patient_page_works_with_javascript_off_and_at_200_percent_zoom(app, browser, live_server, window_url):
    url, touchpoint_id, _ = window_url
    context = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False,
                                  locale="zh-CN", device_scale_factor=2)
    page = context.new_page()
    page.goto(url)
    # 200 % zoom is the same page in half the CSS width: nothing may stick out sideways.
    page.set_viewport_size({"width": 188, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 188
    page.set_viewport_size({"width": 375, "height": 740})
    page.wait_for_timeout(2100)
    page.get_by_text("一般", exact=True).click()
    page.get_by_role("button", name="提交评价").click()
    page.wait_for_url("**/thanks/*")
    assert response_count(app, touchpoint_id) == 1
    context.close()


def test_admin_logs_in_on_the_chinese_login_page_and_adds_a_department(app, live_server, desktop, shots):
    desktop.goto(live_server + "/")
    assert desktop.url == live_server + "/login"
    assert "请先登录" not in desktop.content()
    assert desktop.locator("html").get_attribute("lang") == "zh-CN"
    assert desktop.get_by_role("heading", name="工作人员登录").is_visible()
    desktop.screenshot(path=str(shots / "login.png"))
    desktop.get_by_label("用户名").fill("rmyy-admin")
    desktop.get_by_label("密码").fill(DEMO_PASSWORD)
    desktop.get_by_role("button", name="登录").click()
    desktop.get_by_role("link", name="科室", exact=True).click()
    desktop.get_by_role("link", name="新建科室").click()
    desktop.get_by_label("科室编码").fill("LNK")
    desktop.get_by_label("科室名称").fill("老年医学科")
    desktop.get_by_role("button", name="保存").click()
    assert "科室已创建" in desktop.content()
    assert desktop.get_by_role("cell", name="老年医学科").is_visible()
    desktop.screenshot(path=str(shots / "admin-departments.png"), full_page=True)
