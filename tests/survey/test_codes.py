"""QR code pages: images, posters and tents, rotation, template choice, scoping."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from core.audit import AuditEntry
from core.extensions import db
from organisation.models import Department, Touchpoint
from survey import qr
from survey.models import SurveyResponse, TouchpointCode
from tests.survey.conftest import pdf_pages, staff_login, survey_path, touchpoint

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def base(institution) -> str:
    return f"/i/{institution.id}/survey/codes"


def audits(action: str, target_id=None) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.action == action)
    if target_id is not None:
        stmt = stmt.where(AuditEntry.target_id == str(target_id))
    return list(db.session.scalars(stmt.order_by(AuditEntry.id)))


def department(institution, code: str) -> Department:
    return db.session.scalar(select(Department).where(Department.institution_id == institution.id,
                                                      Department.code == code))


@pytest.fixture
def admin(client, rmyy):
    staff_login(client, "rmyy-admin")
    return client


# The list ----------------------------------------------------------------

def test_code_list_shows_live_code_template_and_patient_url(admin, rmyy, window_code):
    page = admin.get(base(rmyy))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    row = re.search(rf'<tr data-touchpoint="{window_code.touchpoint_id}">(.*?)</tr>', html, re.S).group(1)
    assert window_code.code in row
    assert qr.path_token(window_code) in row
    assert window_code.template.name in row
    assert f"{window_code.touchpoint_id}/qr.png" in row and f"{window_code.touchpoint_id}/qr.svg" in row


def test_the_qr_code_opens_the_public_base_url_when_one_is_set(app, monkeypatch, window_code):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://pj.example.cn/")
    with app.test_request_context("/"):
        assert qr.patient_url(window_code) == f"https://pj.example.cn{survey_path(window_code)}"


def test_touchpoints_without_a_code_offer_to_issue_one(admin, rmyy, builtin_templates):
    html = admin.get(base(rmyy)).get_data(as_text=True)
    assert "尚未生成二维码" in html
    assert "/codes/issue-missing" in html


def test_issue_missing_gives_every_active_touchpoint_a_code_and_audits_each(admin, rmyy, builtin_templates):
    active = list(db.session.scalars(select(Touchpoint).where(Touchpoint.institution_id == rmyy.id,
                                                              Touchpoint.active.is_(True))))
    response = admin.post(f"{base(rmyy)}/issue-missing")
    assert response.status_code == 302
    for tp in active:
        assert qr.active_code(tp) is not None, tp.code
    assert len([a for a in audits("survey_code.issue") if a.institution_id == rmyy.id]) == len(active)


def test_issue_one_code(admin, rmyy, builtin_templates, window_touchpoint):
    response = admin.post(f"{base(rmyy)}/{window_touchpoint.id}/issue")
    assert response.status_code == 302
    code = qr.active_code(window_touchpoint)
    assert code is not None and audits("survey_code.issue", code.id)


# Images ------------------------------------------------------------------

def test_png_download_is_a_png_with_a_sensible_filename(admin, rmyy, window_code):
    response = admin.get(f"{base(rmyy)}/{window_code.touchpoint_id}/qr.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data.startswith(PNG_MAGIC)
    disposition = response.headers["Content-Disposition"]
    assert "attachment" in disposition and f"qr-W-GH-01-{window_code.code}.png" in disposition


def test_svg_download_is_an_svg_document(admin, rmyy, window_code):
    response = admin.get(f"{base(rmyy)}/{window_code.touchpoint_id}/qr.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    root = ET.fromstring(response.data)
    assert root.tag.endswith("svg")
    assert ".svg" in response.headers["Content-Disposition"]


def test_image_of_a_touchpoint_without_code_is_a_clear_404(admin, rmyy, builtin_templates, window_touchpoint):
    response = admin.get(f"{base(rmyy)}/{window_touchpoint.id}/qr.png")
    assert response.status_code == 404
    assert "尚未生成二维码" in response.get_data(as_text=True)


def test_unknown_image_kind_is_404(admin, rmyy, window_code):
    assert admin.get(f"{base(rmyy)}/{window_code.touchpoint_id}/qr.gif").status_code == 404


# Posters and tents -------------------------------------------------------

@pytest.mark.parametrize("kind", ["poster", "tent"])
def test_single_poster_and_tent_are_one_page_pdfs(admin, rmyy, window_code, kind):
    response = admin.get(f"{base(rmyy)}/{window_code.touchpoint_id}/{kind}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert pdf_pages(response.data) == 1
    assert f"{kind}-W-GH-01.pdf" in response.headers["Content-Disposition"]


@pytest.mark.parametrize("kind", ["poster", "tent"])
def test_department_pdf_has_one_page_per_touchpoint_with_a_code(admin, rmyy, builtin_templates, kind):
    cwk = department(rmyy, "CWK")
    touchpoints = list(db.session.scalars(select(Touchpoint).where(Touchpoint.department_id == cwk.id,
                                                                   Touchpoint.active.is_(True))))
    assert len(touchpoints) >= 3
    for tp in touchpoints:
        qr.ensure_code(tp, actor="test")
    response = admin.get(f"{base(rmyy)}/departments/{cwk.id}/{kind}.pdf")
    assert response.status_code == 200
    assert pdf_pages(response.data) == len(touchpoints)


def test_department_pdf_without_codes_says_so(admin, rmyy, builtin_templates):
    cwk = department(rmyy, "CWK")
    response = admin.get(f"{base(rmyy)}/departments/{cwk.id}/poster.pdf")
    assert response.status_code == 404
    assert "没有已生成二维码" in response.get_data(as_text=True)


# Rotation ----------------------------------------------------------------

def test_rotate_asks_for_confirmation_first(admin, rmyy, window_code):
    page = admin.get(f"{base(rmyy)}/{window_code.touchpoint_id}/rotate")
    assert page.status_code == 200
    assert "确认更换" in page.get_data(as_text=True)
    assert qr.active_code(window_code.touchpoint).id == window_code.id


def test_rotate_retires_the_old_code_whose_url_then_explains(admin, client, rmyy, window_code):
    old_path = survey_path(window_code)
    response = admin.post(f"{base(rmyy)}/{window_code.touchpoint_id}/rotate")
    assert response.status_code == 302
    db.session.expire_all()
    new = qr.active_code(window_code.touchpoint)
    assert new is not None and new.id != window_code.id and new.template_id == window_code.template_id
    assert db.session.get(TouchpointCode, window_code.id).retired_at is not None
    old_page = admin.get(old_path)
    assert old_page.status_code == 410
    assert "此二维码已更换" in old_page.get_data(as_text=True)
    assert admin.get(survey_path(new)).status_code == 200
    assert audits("survey_code.retire", window_code.id) and audits("survey_code.rotate", new.id)


def test_responses_made_before_rotation_keep_their_code(admin, rmyy, window_code, respond):
    before = respond(window_code, WIN_OVERALL="4")
    old_id = window_code.id
    assert admin.post(f"{base(rmyy)}/{window_code.touchpoint_id}/rotate").status_code == 302
    db.session.expire_all()
    kept = db.session.get(SurveyResponse, before.id)
    assert kept.code_id == old_id
    assert kept.touchpoint_id == window_code.touchpoint_id


# Template choice ---------------------------------------------------------

def test_template_change_is_audited_and_the_printed_code_stays(admin, rmyy, window_code, builtin_templates):
    opd = builtin_templates["OPD"]
    page = admin.get(f"{base(rmyy)}/{window_code.touchpoint_id}/template")
    assert page.status_code == 200 and opd.name in page.get_data(as_text=True)
    assert builtin_templates["STF"].name not in page.get_data(as_text=True)
    response = admin.post(f"{base(rmyy)}/{window_code.touchpoint_id}/template", data={"template_id": opd.id})
    assert response.status_code == 302
    db.session.expire_all()
    code = db.session.get(TouchpointCode, window_code.id)
    assert code.template_id == opd.id and code.retired_at is None
    entry = audits("survey_code.set_template", code.id)[-1]
    assert entry.data == {"from": builtin_templates["WIN"].id, "to": opd.id}
    assert entry.actor_label == "rmyy-admin"
    patient_page = admin.get(survey_path(code)).get_data(as_text=True)
    assert opd.published.definition["items"][0]["text"] in patient_page


@pytest.mark.parametrize("value", ["STF", "999999", "abc"])
def test_template_change_refuses_staff_unknown_or_malformed_choices(admin, rmyy, window_code, builtin_templates,
                                                                    value):
    template_id = builtin_templates["STF"].id if value == "STF" else value
    response = admin.post(f"{base(rmyy)}/{window_code.touchpoint_id}/template", data={"template_id": template_id})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(TouchpointCode, window_code.id).template_id == builtin_templates["WIN"].id
    assert not audits("survey_code.set_template", window_code.id)


# Who may do what ---------------------------------------------------------

def test_department_handler_cannot_rotate_or_change_template(client, rmyy, window_code, builtin_templates):
    staff_login(client, "rmyy-handler")
    tp = window_code.touchpoint_id
    assert client.get(f"{base(rmyy)}/{tp}/rotate").status_code == 403
    assert client.post(f"{base(rmyy)}/{tp}/rotate").status_code == 403
    assert client.post(f"{base(rmyy)}/{tp}/template", data={"template_id": builtin_templates["OPD"].id}
                       ).status_code == 403
    assert client.post(f"{base(rmyy)}/issue-missing").status_code == 403
    db.session.expire_all()
    assert qr.active_code(window_code.touchpoint).id == window_code.id


def test_department_handler_sees_only_own_departments(client, rmyy, window_code, builtin_templates):
    pharmacy = qr.ensure_code(touchpoint(rmyy, "W-YF-01"), actor="test")  # department YJK, not the handler's
    staff_login(client, "rmyy-handler")
    html = client.get(base(rmyy)).get_data(as_text=True)
    assert window_code.code in html and pharmacy.code not in html
    assert "/rotate" not in html and "/template" not in html
    assert client.get(f"{base(rmyy)}/{window_code.touchpoint_id}/qr.png").status_code == 200
    assert client.get(f"{base(rmyy)}/{pharmacy.touchpoint_id}/qr.png").status_code == 404
    assert client.get(f"{base(rmyy)}/departments/{pharmacy.touchpoint.department_id}/poster.pdf").status_code == 404


def test_admin_of_another_hospital_gets_404(client, rmyy, zyy, window_code):
    staff_login(client, "zyy-admin")
    tp = window_code.touchpoint_id
    for path in (f"{base(rmyy)}", f"{base(rmyy)}/{tp}/qr.png", f"{base(rmyy)}/{tp}/poster.pdf",
                 f"{base(rmyy)}/{tp}/rotate", f"{base(rmyy)}/{tp}/template"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"{base(rmyy)}/{tp}/rotate").status_code == 404
    # Their own institution in the URL does not unlock another hospital's touchpoint.
    poster = f"{base(zyy)}/departments/{window_code.touchpoint.department_id}/poster.pdf"
    for path in (f"{base(zyy)}/{tp}/qr.png", f"{base(zyy)}/{tp}/qr.svg", f"{base(zyy)}/{tp}/tent.pdf",
                 f"{base(zyy)}/{tp}/rotate", poster):
        assert client.get(path).status_code == 404, path
    assert client.post(f"{base(zyy)}/{tp}/rotate").status_code == 404
    db.session.expire_all()
    assert qr.active_code(window_code.touchpoint).id == window_code.id


def test_bad_department_filter_is_a_clear_400(admin, rmyy, builtin_templates):
    response = admin.get(f"{base(rmyy)}?department_id=abc")
    assert response.status_code == 400
    assert "科室无效" in response.get_data(as_text=True)
