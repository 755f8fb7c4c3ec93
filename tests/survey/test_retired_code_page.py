"""A replaced or closed QR code is no dead end: its 410 page says where to complain (issue 10, point 9)."""
from __future__ import annotations

import re
from html import unescape

from core.extensions import db
from organisation import services
from survey import qr
from tests.survey.conftest import survey_path


def page_of(response) -> str:
    return response.get_data(as_text=True)


def test_a_replaced_code_offers_the_complaint_form_phone_and_address(client, rmyy, window_code):
    services.update_complaint_contact(rmyy, phone="028-8888 6666 转 8001", address="门诊楼一层患者服务中心",
                                      actor="test")
    old = survey_path(window_code)
    qr.rotate_code(window_code.touchpoint, actor="test")
    db.session.flush()

    response = client.get(old)

    page = page_of(response)
    assert response.status_code == 410 and "此二维码已更换" in page
    assert rmyy.name in page
    form = unescape(re.search(r'<a class="big" href="([^"]+)">在线提交投诉</a>', page).group(1))
    assert form.endswith(f"/c/{rmyy.id}/new") and client.get(form[form.index("/c/"):]).status_code == 200
    assert '<a href="tel:02888886666">028-8888 6666 转 8001</a>' in page
    assert "门诊楼一层患者服务中心" in page
    assert response.headers["Cache-Control"] == "no-store" and "<script" not in page


def test_a_closed_service_point_says_the_same(client, rmyy, window_code):
    services.update_complaint_contact(rmyy, phone="12320", address="", actor="test")
    window_code.touchpoint.active = False
    db.session.flush()

    response = client.get(survey_path(window_code))

    assert response.status_code == 410 and "该服务点已停用" in page_of(response)
    assert "tel:12320" in page_of(response) and "投诉接待地点" not in page_of(response)


def test_without_a_phone_or_address_the_page_still_points_somewhere(client, rmyy, window_code):
    services.update_complaint_contact(rmyy, phone="", address="", actor="test")
    old = survey_path(window_code)
    qr.rotate_code(window_code.touchpoint, actor="test")
    db.session.flush()

    page = page_of(client.get(old))

    assert "在线提交投诉" in page and "投诉电话" not in page
