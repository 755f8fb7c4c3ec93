"""In a real browser (issue 10, points 4, 7 and 9): one alert for a rating submitted twice, the questionnaire
editor's rows with and without JavaScript, and a replaced QR code's page on a phone. Screenshots go to ``shots``."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from core.extensions import db
from organisation.demo import DEMO_PASSWORD
from organisation.models import Touchpoint
from survey import qr, versioning
from survey.models import RecoveryAlert, SurveyResponse, SurveyTemplate
from tests.factories import demo_institution

pytestmark = pytest.mark.browser


@pytest.fixture
def staff_page(browser):
    """A staff member's desktop at 1366 × 768, the commonest office screen."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    yield context.new_page()
    context.close()


@pytest.fixture
def phone_390(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    yield context.new_page()
    context.close()


def log_in(page, live_server: str, username: str) -> None:
    page.goto(live_server + "/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()


def window(app, code: str = "W-GH-03"):
    """(patient URL path, touchpoint id, institution id) of one of rmyy's windows, with its live QR code."""
    with app.app_context():
        versioning.install_builtin_templates(actor="test")
        institution = demo_institution("rmyy")
        touchpoint = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                                                Touchpoint.code == code))
        path = "/q/" + qr.path_token(qr.ensure_code(touchpoint, actor="test"))
        db.session.commit()
        return path, touchpoint.id, institution.id


def test_a_low_rating_sent_again_after_back_is_one_alert_in_the_list(app, live_server, phone, staff_page, shots):
    path, touchpoint_id, institution_id = window(app)
    phone.goto(live_server + path)
    phone.wait_for_timeout(2100)
    phone.get_by_text("非常不满意", exact=True).tap()
    phone.get_by_text("等候时间长", exact=True).tap()
    phone.locator("#t-WIN_COMMENT").fill("窗口只开了一个，排了四十分钟")
    phone.get_by_role("button", name="提交评价").tap()
    expect(phone).to_have_url(re.compile(r"/thanks/[0-9a-f]+$"), timeout=10_000)
    phone.go_back()
    phone.wait_for_timeout(2100)
    if not phone.get_by_text("非常不满意", exact=True).locator("xpath=../input").is_checked():
        phone.get_by_text("非常不满意", exact=True).tap()
    phone.get_by_role("button", name="提交评价").tap()
    expect(phone).to_have_url(re.compile(r"/thanks/[0-9a-f]+$"), timeout=10_000)
    phone.wait_for_load_state()

    with app.app_context():
        responses = db.session.scalar(select(func.count()).select_from(SurveyResponse)
                                      .where(SurveyResponse.touchpoint_id == touchpoint_id))
        alerts = db.session.scalar(select(func.count()).select_from(RecoveryAlert)
                                   .where(RecoveryAlert.touchpoint_id == touchpoint_id))
    assert (responses, alerts) == (2, 1)

    log_in(staff_page, live_server, "rmyy-officer")
    staff_page.goto(f"{live_server}/i/{institution_id}/survey/alerts")
    rows = staff_page.locator("table.table tbody tr", has_text="门诊挂号收费 3 号窗口")
    expect(rows).to_have_count(1)
    staff_page.screenshot(path=str(shots / "alerts-list-1366.png"))
    rows.first.get_by_role("link").click()
    expect(staff_page.get_by_text("同一设备当天在此服务点的其他评价")).to_be_visible()
    staff_page.screenshot(path=str(shots / "alert-detail-1366.png"), full_page=True)


def _own_window_template(app) -> tuple[int, int]:
    with app.app_context():
        versioning.install_builtin_templates(actor="test")
        institution = demo_institution("rmyy")
        template = db.session.scalar(select(SurveyTemplate).where(SurveyTemplate.institution_id == institution.id,
                                                                  SurveyTemplate.code == "WIN_BROWSER"))
        if template is None:
            template = versioning.copy_template(versioning.builtin_template("WIN"), institution, code="WIN_BROWSER",
                                                name="窗口评价（本院）", actor="test")
        db.session.commit()
        return institution.id, template.id


def _saved_reasons(app, template_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        db.session.expire_all()
        draft = db.session.get(SurveyTemplate, template_id).draft
        item = next(i for i in draft.definition["items"] if i["code"] == "WIN_REASON")
        return [(o["value"], o["label"]) for o in item["options"]]


def _reason_rows(page):
    return page.locator("fieldset[data-rows='items-1-options'] > table > tbody > tr")


def test_the_editor_rows_work_in_the_page_with_javascript(app, live_server, staff_page, shots):
    institution_id, template_id = _own_window_template(app)
    before = _saved_reasons(app, template_id)
    log_in(staff_page, live_server, "rmyy-admin")
    url = f"{live_server}/i/{institution_id}/survey/templates/{template_id}/edit"
    staff_page.goto(url)
    staff_page.screenshot(path=str(shots / "editor-top-1366.png"))
    requests = []
    staff_page.on("request", lambda r: requests.append(r.url))
    rows = _reason_rows(staff_page)
    expect(rows).to_have_count(len(before))

    staff_page.locator("fieldset[data-rows='items-1-options'] .add-row").click()
    expect(rows).to_have_count(len(before) + 1)
    new = rows.last
    expect(new.locator("input").first).to_be_focused()
    new.locator("input[name$='-value']").fill("R_PARK")
    new.locator("input[name$='-label']").fill("停车难")
    new.get_by_role("button", name="上移此选项").click()
    rows.first.get_by_role("button", name="删除此选项").click()
    assert requests == []  # all of it in the page
    expect(rows.nth(len(before) - 2).locator("input[name$='-value']")).to_have_value("R_PARK")
    assert rows.nth(len(before) - 2).locator("input[name$='-value']").get_attribute("name") == \
        f"items-1-options-{len(before) - 2}-value"
    staff_page.screenshot(path=str(shots / "editor-1366.png"))
    staff_page.locator("section.item-editor").nth(1).screenshot(path=str(shots / "editor-options-1366.png"))

    staff_page.get_by_role("button", name="保存草稿").last.click()
    staff_page.wait_for_load_state()
    expected = before[1:-1] + [("R_PARK", "停车难"), before[-1]]
    assert _saved_reasons(app, template_id) == expected


def test_the_editor_rows_work_without_javascript(app, live_server, browser, shots):
    institution_id, template_id = _own_window_template(app)
    before = _saved_reasons(app, template_id)
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server, "rmyy-admin")
        page.goto(f"{live_server}/i/{institution_id}/survey/templates/{template_id}/edit")
        rows = _reason_rows(page)
        page.locator("fieldset[data-rows='items-1-options'] .add-row").click()  # a plain submit
        page.wait_for_load_state()
        expect(rows).to_have_count(len(before) + 1)
        rows.last.locator("input[name$='-value']").fill("R_NOISE")
        rows.last.locator("input[name$='-label']").fill("太吵")
        rows.last.locator("input[name$='-score']").fill("很高")
        page.get_by_role("button", name="保存草稿").last.click()
        page.wait_for_load_state()
        expect(page.get_by_text("分数须为 0 到 100 之间的数字。")).to_be_visible()
        page.screenshot(path=str(shots / "editor-row-error-1366.png"))
        rows.last.locator("input[name$='-score']").fill("")
        rows.last.locator("input[name$='-label']").press("Enter")  # Enter saves, it does not move a row
        page.wait_for_load_state()
        assert _saved_reasons(app, template_id) == before + [("R_NOISE", "太吵")]
    finally:
        context.close()


def test_a_replaced_code_on_a_phone_offers_the_complaint_form_and_phone(app, live_server, staff_page, phone_390,
                                                                        shots):
    path, _touchpoint_id, institution_id = window(app, "W-GH-01")
    log_in(staff_page, live_server, "rmyy-admin")
    staff_page.get_by_role("link", name="机构设置").click()
    staff_page.get_by_label("投诉电话").fill("028-8888 6666 转 8001")
    staff_page.get_by_label("投诉接待地点").fill("门诊楼一层患者服务中心（周一至周五 8:00–17:30）")
    staff_page.get_by_role("button", name="保存").click()
    expect(staff_page.get_by_text("机构设置已保存。")).to_be_visible()
    staff_page.screenshot(path=str(shots / "institution-settings-1366.png"))
    with app.app_context():
        touchpoint = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == institution_id,
                                                                Touchpoint.code == "W-GH-01"))
        qr.rotate_code(touchpoint, actor="test")
        db.session.commit()

    response = phone_390.goto(live_server + path)

    assert response.status == 410
    expect(phone_390.get_by_role("heading", name="此二维码已更换")).to_be_visible()
    expect(phone_390.get_by_role("link", name="028-8888 6666 转 8001")).to_have_attribute("href", "tel:02888886666")
    assert phone_390.evaluate("document.documentElement.scrollWidth") <= 390
    phone_390.screenshot(path=str(shots / "retired-code-390.png"), full_page=True)
    phone_390.get_by_role("link", name="在线提交投诉").click()
    expect(phone_390).to_have_url(re.compile(rf"/c/{institution_id}/new$"))


def test_the_new_touchpoint_form_asks_which_department(app, live_server, staff_page, shots):
    log_in(staff_page, live_server, "rmyy-admin")
    staff_page.get_by_role("link", name="服务点", exact=True).click()
    staff_page.get_by_role("link", name="新建服务点").click()
    expect(staff_page.get_by_label("所属科室")).to_have_value("")  # nothing chosen for the admin
    staff_page.get_by_label("服务点编码").fill("W-NEW-99")
    staff_page.get_by_label("服务点名称").fill("新开窗口")
    staff_page.get_by_role("button", name="保存").click()
    expect(staff_page.get_by_text("请选择所属科室。")).to_be_visible()
    staff_page.screenshot(path=str(shots / "touchpoint-new-1366.png"))
