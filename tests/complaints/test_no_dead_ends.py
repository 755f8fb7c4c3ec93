"""No dead ends for complainants (issue 10, point 9): the lookup offers a closed case's satisfaction link to the
complainant who passed its check, and a complaint opened from a survey thank-you page starts from the rating."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select, update

from complaints import feedback as feedback_service
from complaints.feedback import answer_feedback
from complaints.models import Feedback
from core.db import utcnow
from core.extensions import db
from organisation.models import Touchpoint
from survey import inbox, qr, versioning
from survey.models import InboxContext, SurveyInbox
from tests.complaints.test_feedback import closed_case
from tests.complaints.test_lookup import ask, wrong
from tests.factories import demo_institution
from tests.survey.conftest import submission_id_of, submit

pytestmark = pytest.mark.usefixtures("fresh_lockouts")


def html(response) -> str:
    return response.get_data(as_text=True)


def feedback_link(page: str) -> str | None:
    match = re.search(r'href="([^"]*/c/feedback/[^"]+)"', page)
    return unescape(match.group(1)) if match else None


# The lookup's feedback link ---------------------------------------------------------------

def test_a_closed_case_shows_its_feedback_link_to_the_complainant_who_passed_the_check(client, make_case, rmyy):
    case, fb = closed_case(make_case, rmyy)

    found = ask(client, rmyy, case.case_number, case.plain_lookup_code)

    assert found.status_code == 200 and "已办结" in html(found)
    link = feedback_link(html(found))
    assert link is not None and link.endswith(feedback_service.feedback_token(fb))
    assert "评价处理结果" in html(found) and "评价链接有效期至" in html(found)
    assert client.get(link[link.index("/c/feedback/"):]).status_code == 200  # the link opens the question


def test_no_feedback_link_without_the_right_code_or_before_the_case_is_closed(client, new_client, make_case, rmyy):
    case, _fb = closed_case(make_case, rmyy)
    refused = ask(client, rmyy, case.case_number, wrong(case.plain_lookup_code))
    assert refused.status_code == 404 and feedback_link(html(refused)) is None
    assert feedback_link(html(new_client().get(f"/c/lookup?i={rmyy.id}&n={case.case_number}"))) is None

    open_case = make_case()
    found = ask(new_client(), rmyy, open_case.case_number, open_case.plain_lookup_code)
    assert found.status_code == 200 and feedback_link(html(found)) is None


def test_an_answered_link_is_replaced_by_the_answer(client, make_case, rmyy):
    case, fb = closed_case(make_case, rmyy)
    answer_feedback(fb, "satisfied")
    db.session.flush()

    found = html(ask(client, rmyy, case.case_number, case.plain_lookup_code))

    assert feedback_link(found) is None
    assert "您对处理结果的评价：满意。" in found


def test_an_expired_link_is_not_offered(client, make_case, rmyy):
    case, fb = closed_case(make_case, rmyy)
    db.session.execute(update(Feedback).where(Feedback.id == fb.id).values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.flush()

    assert feedback_link(html(ask(client, rmyy, case.case_number, case.plain_lookup_code))) is None


def test_a_merged_away_case_does_not_hand_out_the_other_cases_link(client, make_case, rmyy):
    target, _fb = closed_case(make_case, rmyy)
    duplicate = make_case()
    duplicate.merged_into_id = target.id
    db.session.flush()

    found = html(ask(client, rmyy, duplicate.case_number, duplicate.plain_lookup_code))

    assert "合并处理" in found and feedback_link(found) is None


# The complaint form opened from a rating's thank-you page ----------------------------------------------

@pytest.fixture
def window_code(ctx):
    versioning.install_builtin_templates(actor="test")
    institution = demo_institution("rmyy")
    touchpoint = db.session.scalar(select(Touchpoint).where(Touchpoint.institution_id == institution.id,
                                                            Touchpoint.code == "W-GH-01"))
    return qr.ensure_code(touchpoint, actor="test")


def _selected_department(page: str) -> str | None:
    select_box = re.search(r'<select[^>]*name="department".*?</select>', page, re.S).group(0)
    chosen = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', select_box)
    return (chosen.group(1) or chosen.group(2)) if chosen else None


def _description(page: str) -> str:
    return unescape(re.search(r'<textarea[^>]*name="description"[^>]*>(.*?)</textarea>', page, re.S).group(1)).strip()


def test_a_complaint_from_the_thank_you_page_starts_from_the_rating(client, new_client, rmyy, window_code):
    posted = submit(client, window_code, WIN_OVERALL="1", WIN_REASON=["R_WAIT"], WIN_COMMENT="排队一个小时没人管")
    sid = submission_id_of(posted)
    thanks = html(client.get(f"/thanks/{sid}"))
    form_url = unescape(re.search(r'href="([^"]*/c/\d+/new[^"]*)"', thanks).group(1))

    page = html(client.get(form_url[form_url.index("/c/"):]))

    assert _description(page) == "排队一个小时没人管"
    assert _selected_department(page) == str(window_code.touchpoint.department_id)


def test_a_rating_still_in_the_inbox_prefills_the_form_too(client, rmyy, window_code, monkeypatch):
    monkeypatch.setattr(inbox, "processes_inline", lambda: False)  # a worker will process it, not the request
    sid = submission_id_of(submit(client, window_code, WIN_OVERALL="2", WIN_COMMENT="收费窗口算错了钱"))
    assert inbox.pending(sid) is not None

    page = html(client.get(f"/c/{rmyy.id}/new?response={sid}"))

    assert _description(page) == "收费窗口算错了钱"
    assert _selected_department(page) == str(window_code.touchpoint.department_id)


def test_another_hospitals_rating_prefills_nothing(client, rmyy, zyy, window_code):
    sid = submission_id_of(submit(client, window_code, WIN_OVERALL="1", WIN_COMMENT="别家医院看不到"))

    page = html(client.get(f"/c/{zyy.id}/new?response={sid}"))

    assert _description(page) == "" and _selected_department(page) in (None, "None", "")


def test_a_forged_inbox_row_of_another_hospital_prefills_nothing(client, rmyy, zyy, window_code):
    meta = InboxContext(institution_id=rmyy.id, code_id=window_code.id, touchpoint_id=window_code.touchpoint_id,
                        department_id=window_code.touchpoint.department_id,
                        version_id=window_code.template.published.id, fill_seconds=9.0, form_problem=None,
                        device_hash="", ip_hash="")
    sid = uuid.uuid4().hex
    db.session.add(SurveyInbox(submission_id=sid, payload={"meta": meta.to_json(),
                                                           "form": {"q_WIN_OVERALL": ["1"],
                                                                    "q_WIN_COMMENT": ["只给本院看"]}}))
    db.session.flush()

    assert _description(html(client.get(f"/c/{zyy.id}/new?response={sid}"))) == ""
    assert _description(html(client.get(f"/c/{rmyy.id}/new?response={sid}"))) == "只给本院看"


# In a browser, at 390 px ------------------------------------------------------------------

@pytest.mark.browser
def test_on_a_phone_the_lookup_leads_to_the_satisfaction_question(live_server, browser, shots, make_case, rmyy):
    case, _fb = closed_case(make_case, rmyy)
    number, code, institution_id = case.case_number, case.plain_lookup_code, rmyy.id
    db.session.commit()
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    page = context.new_page()
    try:
        page.goto(f"{live_server}/c/lookup?i={institution_id}&n={number}")
        page.get_by_label("查询码").fill(code)
        page.get_by_role("button", name="查询").tap()
        page.wait_for_load_state()
        link = page.get_by_role("link", name="评价处理结果")
        link.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        link.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "lookup-feedback-390.png"), full_page=True)
        link.tap()
        page.get_by_text("您对本次投诉的处理结果是否满意？").first.wait_for()
        assert "/c/feedback/" in page.url
    finally:
        context.close()
