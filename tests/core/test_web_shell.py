"""The web shell: security headers, localized error pages, the language switch, CSRF, /healthz."""
from __future__ import annotations

import logging

import pytest
from flask import abort

from core.i18n import select_locale
from tests.factories import demo_user, login

TITLES = {  # code: (Chinese, English)
    400: ("请求无效", "Bad request"),
    403: ("无权访问", "Access denied"),
    404: ("页面不存在", "Page not found"),
    405: ("请求方式不被允许", "Method not allowed"),
    429: ("操作过于频繁", "Too many requests"),
    500: ("服务器出错了", "Something went wrong on the server"),
}


@pytest.fixture
def shell_app(make_app, database_url):
    """A fresh app with test-only routes (the session app is never mutated) and a tight login limit."""
    app = make_app(DATABASE_URL=database_url, LOGIN_RATE_LIMIT="2 per minute")

    @app.get("/test/bad-request")
    def bad_request():
        abort(400)

    @app.get("/test/boom")
    def boom():
        raise RuntimeError("secret detail: password=hunter2")

    @app.get("/api/test/boom")
    def api_boom():
        raise RuntimeError("secret detail from the API")

    return app


def provoke(client, code: int):
    """Reach each error through the app's real paths where one exists."""
    if code == 400:
        return client.get("/test/bad-request")
    if code == 403:  # a complaint officer may not manage regions
        with client.application.app_context():
            login(client, demo_user("rmyy-officer"))
        return client.get("/admin/regions")
    if code == 404:
        return client.get("/no-such-page")
    if code == 405:
        return client.post("/healthz")
    if code == 429:  # the staff login limit
        for _ in range(5):
            response = client.post("/login", data={"username": "nobody-here", "password": "wrong-password-1"})
            if response.status_code == 429:
                return response
            assert response.status_code == 401
        pytest.fail("the login limit never answered 429")
    if code == 500:
        return client.get("/test/boom")
    raise AssertionError(code)


# Security headers ------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", "/login"), ("GET", "/healthz"), ("GET", "/no-such-page"), ("GET", "/lang/en"),
    ("GET", "/static/css/staff.css"), ("GET", "/test/boom"), ("POST", "/healthz"),
])
def test_every_response_carries_the_security_headers(shell_app, method, path):
    response = shell_app.test_client().open(path, method=method)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # only in production


def test_the_error_page_needs_no_inline_script_or_style(shell_app):
    page = shell_app.test_client().get("/no-such-page").get_data(as_text=True)
    assert "<style" not in page and "style=" not in page
    assert "<script>" not in page


# Error pages -----------------------------------------------------------------

@pytest.mark.parametrize("code", sorted(TITLES))
def test_error_pages_are_in_chinese_by_default(shell_app, code):
    response = provoke(shell_app.test_client(), code)
    assert response.status_code == code
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert f"<h1>{TITLES[code][0]}</h1>" in page
    assert "Traceback" not in page


@pytest.mark.parametrize("code", sorted(TITLES))
def test_error_pages_are_in_english_after_switching_language(shell_app, code):
    client = shell_app.test_client()
    assert client.get("/lang/en").status_code == 302
    response = provoke(client, code)
    assert response.status_code == code
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert f"<h1>{TITLES[code][1]}</h1>" in page
    assert TITLES[code][0] not in page
    assert "Traceback" not in page


@pytest.mark.parametrize("code", [404, 500])
def test_error_pages_follow_an_english_browser(shell_app, code):
    client = shell_app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    page = provoke(client, code).get_data(as_text=True)
    assert f"<h1>{TITLES[code][1]}</h1>" in page


def test_a_server_error_is_logged_but_its_detail_never_shown(shell_app, caplog):
    response = shell_app.test_client().get("/test/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "hunter2" not in page and "RuntimeError" not in page
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error on GET /test/boom"]
    assert logged and logged[0].levelno == logging.ERROR and logged[0].exc_info is not None


def test_a_405_page_still_says_which_methods_are_allowed(shell_app):
    response = shell_app.test_client().post("/healthz")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert response.mimetype == "text/html"


def test_a_429_page_says_when_to_retry(shell_app):
    response = provoke(shell_app.test_client(), 429)
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("path, headers", [
    ("/api/no-such-thing", {}),
    ("/no-such-page", {"Accept": "application/json"}),
])
def test_api_and_json_clients_get_json_errors(shell_app, path, headers):
    response = shell_app.test_client().get(path, headers=headers)
    assert response.status_code == 404
    assert response.get_json() == {"error": "页面不存在", "message": "您访问的页面不存在或已被移除。"}


def test_a_server_error_on_the_api_is_json_without_detail(shell_app):
    response = shell_app.test_client().get("/api/test/boom", headers={"Accept-Language": "en"})
    assert response.status_code == 500
    assert response.get_json()["error"] == "Something went wrong on the server"
    assert "secret detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_browser_accepting_anything_gets_html_errors(shell_app):
    response = shell_app.test_client().get(
        "/no-such-page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.mimetype == "text/html"


# Language ----------------------------------------------------------------------

def test_the_language_switch_remembers_the_choice_and_returns_to_the_page(client):
    response = client.get("/lang/en", query_string={"next": "/login?x=1"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?x=1"
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)
    client.get("/lang/zh_Hans")
    assert '<html lang="zh-CN">' in client.get("/login").get_data(as_text=True)


def test_the_language_switch_ignores_unknown_languages(client):
    client.get("/lang/fr")
    assert '<html lang="zh-CN">' in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize("target", [
    "//evil.example", "///evil.example", "https://evil.example/", "javascript:alert(1)",
    "/\t/evil.example", "/\n/evil.example", "/\\evil.example", "\\\\evil.example", "evil.example",
])
def test_the_language_switch_rejects_open_redirects(client, target):
    response = client.get("/lang/en", query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("header, locale", [
    ("zh-CN,zh;q=0.9", "zh_Hans"),
    ("zh-TW", "zh_Hans"),
    ("en-US,en;q=0.9", "en"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("fr-FR,fr;q=0.9", "zh_Hans"),
    ("", "zh_Hans"),
])
def test_browser_languages_map_to_the_supported_locales(app, header, locale):
    with app.test_request_context(headers={"Accept-Language": header} if header else {}):
        assert select_locale() == locale


def test_a_chinese_browser_gets_a_chinese_page(client):
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page


def test_the_chosen_language_beats_the_browser(client):
    client.get("/lang/zh_Hans")
    page = client.get("/login", headers={"Accept-Language": "en-US,en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page


# CSRF ----------------------------------------------------------------------------

@pytest.fixture
def csrf_app(make_app, database_url):
    return make_app(DATABASE_URL=database_url, WTF_CSRF_ENABLED=True)


@pytest.mark.parametrize("data", [
    {"username": "rmyy-admin", "password": "whatever-1234"},
    {"username": "rmyy-admin", "password": "whatever-1234", "csrf_token": "forged"},
])
def test_a_form_post_without_a_valid_csrf_token_gets_the_expired_page(csrf_app, data):
    response = csrf_app.test_client().post("/login", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "页面已过期，请刷新后重新提交。" in page
    assert "<h1>请求无效</h1>" in page


def test_the_expired_page_is_translated(csrf_app):
    client = csrf_app.test_client()
    client.get("/lang/en")
    page = client.post("/login", data={"username": "x"}).get_data(as_text=True)
    assert "This page has expired. Please reload it and submit again." in page


# Health ----------------------------------------------------------------------------

def test_healthz_reports_inline_jobs_when_jobs_inline_is_set(client, app):
    assert app.config["JOBS_INLINE"] is True
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["redis"] == "ok"
    assert body["jobs"] == "inline"


def test_healthz_is_503_degraded_when_the_database_is_unreachable(make_app):
    app = make_app(DATABASE_URL="postgresql+psycopg://root@127.0.0.1:1/nowhere")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["database"] == "error: OperationalError"
    assert body["redis"] == "not configured"


def test_healthz_is_503_degraded_when_redis_is_unreachable(make_app, database_url):
    app = make_app(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["database"] == "ok"
    assert body["redis"] == "error: ConnectionError"


def test_error_pages_still_render_when_the_database_is_unreachable(make_app):
    app = make_app(DATABASE_URL="postgresql+psycopg://root@127.0.0.1:1/nowhere")
    response = app.test_client().get("/no-such-page")
    assert response.status_code == 404
    assert "<h1>页面不存在</h1>" in response.get_data(as_text=True)


# Sessions ----------------------------------------------------------------------

def test_a_session_signed_with_a_retired_key_is_kept_only_while_that_key_is_a_fallback(make_app, database_url):
    """The session signer is built once per key set, so a key rotation still takes effect at once."""
    app = make_app(DATABASE_URL=database_url, SECRET_KEY="the-first-secret-key")
    client = app.test_client()
    with client.session_transaction() as session:
        session["lang"] = "en"
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)

    app.secret_key = app.config["SECRET_KEY"] = "the-second-secret-key"
    app.config["SECRET_KEY_FALLBACKS"] = ["the-first-secret-key"]
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)

    app.config["SECRET_KEY_FALLBACKS"] = []
    assert '<html lang="zh-CN">' in client.get("/login").get_data(as_text=True)  # the old cookie no longer counts
