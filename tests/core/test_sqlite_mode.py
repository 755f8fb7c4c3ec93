"""The embedded mode exactly as `make run` starts it: SQLite, no Redis, CLI then browser."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from core.extensions import db
from organisation import demo
from organisation.models import Department, Institution, StaffUser
from tests.survey.conftest import aged_form_token

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(page: str) -> str:
    match = CSRF_FIELD.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def embedded_app(make_app, tmp_path):
    """`create_app()` as wsgi.py calls it (TINGJIAN_CONFIG unset: development), in a temp instance folder."""
    return make_app(None, INSTANCE_PATH=str(tmp_path / "instance"))


def test_embedded_mode_migrates_seeds_once_and_serves_the_staff_pages(embedded_app, tmp_path):
    app = embedded_app
    assert app.config["CONFIG_NAME"] == "Development"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'instance' / 'tingjian.db'}"
    cli = app.test_cli_runner()

    result = cli.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "instance" / "tingjian.db").exists()

    result = cli.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "Demo loaded" in result.output
    assert "rmyy-admin" in result.output
    with app.app_context():
        counts = [db.session.scalar(select(func.count()).select_from(m)) for m in (Institution, StaffUser)]
    assert counts[0] == 3

    result = cli.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "already loaded" in result.output
    with app.app_context():
        assert [db.session.scalar(select(func.count()).select_from(m)) for m in (Institution, StaffUser)] == counts

    client = app.test_client()
    login_page = client.get("/login")
    assert login_page.status_code == 200
    page = login_page.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "登录" in page

    response = client.post("/login", data={"username": "rmyy-admin", "password": demo.DEMO_PASSWORD,
                                           "csrf_token": csrf_token(page)})
    assert response.status_code == 302, response.get_data(as_text=True)

    with app.app_context():
        institution_id = db.session.scalar(
            select(Institution.id).where(Institution.registration_code == "DEMO-510104-001"))
        cardiology = db.session.scalar(select(Department.name).where(
            Department.institution_id == institution_id, Department.code == "XNK"))
    departments = client.get(f"/i/{institution_id}/departments")
    assert departments.status_code == 200
    assert cardiology in departments.get_data(as_text=True)

    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json() | {"time": None} == {
        "status": "ok", "database": "ok", "redis": "not configured", "jobs": "inline",
        "scheduler_heartbeat": None, "scheduler_stale": None, "time": None,
    }


def test_embedded_mode_checks_csrf_tokens_on_forms(embedded_app):
    response = embedded_app.test_client().post("/login",
                                               data={"username": "rmyy-admin", "password": demo.DEMO_PASSWORD})
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)


def test_embedded_mode_takes_a_patients_rating_once(embedded_app):
    """The rating's one-statement insert works on SQLite too, and a double tap stays one response.

    Without Redis the first copy is processed (and leaves the inbox) within its
    own request, so here the second copy is recognised as a duplicate by the
    responses' unique submission id; the inbox's own duplicate check is in
    tests/survey/test_inbox.py.
    """
    from survey import qr
    from survey.models import SurveyResponse, TouchpointCode

    app = embedded_app
    cli = app.test_cli_runner()
    for args in (["db", "upgrade"], ["seed-demo"]):
        result = cli.invoke(args=args)
        assert result.exit_code == 0, result.output
    with app.app_context():
        code = db.session.scalars(select(TouchpointCode).where(TouchpointCode.retired_at.is_(None))).first()
        path, code_id = f"/q/{qr.path_token(code)}", code.id
        before = db.session.scalar(select(func.count()).select_from(SurveyResponse))
    phone = app.test_client()
    page = phone.get(path).get_data(as_text=True)
    form = {"submission_id": "a" * 32, "q_WIN_OVERALL": "5",
            "form_token": re.search(r'name="form_token" value="([^"]+)"', page).group(1)}

    answers = [phone.post(path, data=form) for _ in range(2)]

    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"] == "/thanks/" + "a" * 32
    with app.app_context():  # no Redis: processed within the request
        assert db.session.scalar(select(func.count()).select_from(SurveyResponse)) == before + 1
        stored = db.session.scalar(select(SurveyResponse).where(SurveyResponse.submission_id == "a" * 32))
        assert stored.code_id == code_id and stored.overall_score == 100.0
    assert "评价已收到" in phone.get(answers[0].headers["Location"]).get_data(as_text=True)


def test_embedded_mode_processes_a_batch_of_ratings_with_their_flags_and_alerts(embedded_app, monkeypatch):
    """The set-based inbox job on SQLite: no SKIP LOCKED, RETURNING for the ids, the flag look-ups."""
    from survey import inbox, qr, submission
    from survey import tasks as survey_tasks
    from survey.models import RecoveryAlert, SurveyResponse, TouchpointCode

    app = embedded_app
    cli = app.test_cli_runner()
    for args in (["db", "upgrade"], ["seed-demo"]):
        result = cli.invoke(args=args)
        assert result.exit_code == 0, result.output
    with app.app_context():
        code = db.session.scalars(select(TouchpointCode).where(TouchpointCode.retired_at.is_(None))).first()
        path = f"/q/{qr.path_token(code)}"
    monkeypatch.setattr(inbox, "processes_inline", lambda: False)  # as with a worker: the rows wait
    phone = app.test_client()
    page = phone.get(path).get_data(as_text=True)
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    sids = [f"{n}" * 32 for n in range(1, 4)]
    for sid, value in zip(sids, ("5", "1", "4"), strict=True):
        posted = phone.post(path, data={"submission_id": sid, "q_WIN_OVERALL": value, "form_token": token})
        assert posted.status_code == 303
    # Another phone, taking its time, rates low: the one rating here that raises an alert (flagged ones never do).
    other = app.test_client()
    other_page = other.get(path).get_data(as_text=True)
    with app.test_request_context():
        aged = aged_form_token(re.search(r'name="form_token" value="([^"]+)"', other_page).group(1), 30)
    low = "4" * 32
    assert other.post(path, data={"submission_id": low, "q_WIN_OVERALL": "1", "form_token": aged}).status_code == 303

    monkeypatch.setattr(submission, "_FEW_KEYS", 0)  # the scan for many phones (one rating's own path: above)
    with app.app_context():
        assert survey_tasks.drain_inbox() == 4
        stored = {r.submission_id: r for r in db.session.scalars(
            select(SurveyResponse).where(SurveyResponse.submission_id.in_([*sids, low])))}
        # One phone, one touchpoint: the second and third ratings are repeats (and posted at once: too fast).
        assert [sorted(set(stored[sid].flags) - {"too_fast"}) for sid in sids] == [[], ["repeat_device"],
                                                                                  ["repeat_device"]]
        assert [(a.item_code, a.score) for a in stored[sids[1]].answers] == [("WIN_OVERALL", 0.0)]
        assert db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == stored[sids[1]].id)) is None
        assert stored[low].flags == []
        alert = db.session.scalar(select(RecoveryAlert).where(RecoveryAlert.response_id == stored[low].id))
        assert alert is not None and alert.notified_at is not None  # no Redis: notified inline after the commit
