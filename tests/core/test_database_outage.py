"""While PostgreSQL is down or restarting, users get a clear 503 page in Chinese, never a 500 or a stack trace."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.extensions import db

# Nothing listens on port 1: a connection is refused at once, as while PostgreSQL restarts.
DEAD_DATABASE = "postgresql+psycopg://root@127.0.0.1:1/tingjian"


@pytest.fixture
def down_app(make_app):
    """The production configuration on a database that cannot be reached."""
    return make_app("production", SECRET_KEY="database-outage-test", DATABASE_URL=DEAD_DATABASE)


def assert_unavailable_page(response) -> None:
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "服务暂不可用" in body
    assert "请过一两分钟再试" in body
    for leak in ("Traceback", "OperationalError", "psycopg", "127.0.0.1"):
        assert leak not in body
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_patient_page_answers_503_in_chinese_while_the_database_is_down(down_app):
    assert_unavailable_page(down_app.test_client().get("/c/1/new"))


def test_a_submission_answers_503_while_the_database_is_down(down_app):
    response = down_app.test_client().post("/c/1/new", data={"submission_id": "a" * 32, "description": "等了很久"})
    assert_unavailable_page(response)


def test_the_outage_is_logged_as_one_line_without_a_traceback(down_app, caplog):
    caplog.set_level(logging.INFO, logger="core.errors")
    down_app.test_client().get("/c/1/new")
    lines = [r for r in caplog.records if r.name == "core.errors"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert "GET /c/1/new" in lines[0].getMessage()


def test_the_api_answers_503_in_json_while_the_database_is_down(down_app):
    response = down_app.test_client().post("/api/v1/discharges", json=[],
                                           headers={"Authorization": "Bearer tj_" + "x" * 40})
    assert response.status_code == 503
    assert response.get_json()["error"] == "服务暂不可用"
    assert response.headers["Retry-After"] == "30"


def test_a_database_error_that_is_not_an_outage_is_still_a_500(make_app, database_url):
    """A bug (here a broken constraint) is the server's fault: the 500 page and a logged traceback, not a 503."""
    broken = make_app("production", SECRET_KEY="database-outage-test", DATABASE_URL=database_url)

    @broken.get("/_broken")
    def _broken():
        db.session.execute(text("SELECT 1"))
        raise IntegrityError("INSERT …", {}, Exception("duplicate key"))

    response = broken.test_client().get("/_broken")
    assert response.status_code == 500
    assert "服务器出错了" in response.get_data(as_text=True)
