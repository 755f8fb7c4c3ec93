"""In a real browser at the staff desktop size: the handler logs in, sees the badge, the case routed to them on
the home page and in the notification list, and opens it. Screenshots go to the `shots` folder."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from complaints import routing, tasks, triage
from core.extensions import db
from organisation.models import Notification
from tests.complaints.conftest import department
from tests.complaints.test_end_to_end import log_in, submit
from tests.factories import demo_user

pytestmark = pytest.mark.browser


def test_the_handler_sees_the_routed_case_in_the_header_home_and_list(app, live_server, browser, shots, make_case,
                                                                      rmyy, outbox):
    officer = demo_user("rmyy-officer")
    case = make_case(subject="夜间病房呼叫铃长时间无人应答")
    triage.accept_complaint(case, actor=officer)
    routing.assign_department(case, department(rmyy, "XNK"), actor=officer)
    db.session.commit()
    assert tasks.notify_department(case.id, department(rmyy, "XNK").id) == 1
    number, case_path = case.case_number, f"/i/{rmyy.id}/complaints/{case.id}"

    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    try:
        page = context.new_page()
        log_in(page, live_server, "rmyy-handler")
        assert page.url == f"{live_server}/i/{rmyy.id}/"
        bell = page.locator("header a.bell")
        assert bell.inner_text().replace("\n", "") == "通知未读1"  # the hidden word is for screen readers
        assert page.locator(".badge").is_visible()
        todo = page.locator("section[aria-labelledby=todo-title]")
        assert number in todo.inner_text() and "本科室主办、待起草答复的投诉" in todo.inner_text()
        latest = page.locator("section[aria-labelledby=latest-title]")
        assert f"新投诉 {number} 已分派至心血管内科（主办）" in latest.inner_text()
        page.screenshot(path=str(shots / "notify-handler-home.png"))
        page.locator("header.topbar").screenshot(path=str(shots / "notify-header-badge.png"))

        submit(page, bell)
        assert page.url == f"{live_server}/notifications"
        page.screenshot(path=str(shots / "notify-list.png"), full_page=True)
        submit(page, page.get_by_role("button", name=f"新投诉 {number} 已分派至心血管内科（主办）"))
        assert page.url == live_server + case_path
        assert page.locator(".badge").count() == 0
    finally:
        context.close()
    db.session.commit()
    (row,) = db.session.scalars(select(Notification).where(Notification.user_id == demo_user("rmyy-handler").id))
    assert row.read_at is not None
