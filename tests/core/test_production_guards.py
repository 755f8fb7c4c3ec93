"""Production guards (issue 11, point 6): the demo and published passwords stay off a production install.

The configuration is chosen by TINGJIAN_CONFIG (core.config.resolve); ``IS_PRODUCTION`` is set from the
chosen class after every override, so the commands ask the app, not the environment.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from organisation import demo
from organisation.models import StaffUser


def staff_count() -> int:
    from core.extensions import db

    return db.session.scalar(select(func.count()).select_from(StaffUser))


@pytest.fixture
def production(app, monkeypatch):
    """The session app, flagged as the production configuration for one test (its data is rolled back)."""
    monkeypatch.setitem(app.config, "IS_PRODUCTION", True)
    return app


def test_the_production_configuration_is_known_whichever_way_it_was_chosen(make_app, clean_env, database_url):
    assert make_app("production", SECRET_KEY="x" * 32, DATABASE_URL=database_url).config["IS_PRODUCTION"] is True
    clean_env.setenv("TINGJIAN_CONFIG", "production")
    clean_env.setenv("TINGJIAN_SECRET_KEY", "y" * 32)
    clean_env.setenv("TINGJIAN_DATABASE_URL", database_url)
    clean_env.setenv("TINGJIAN_IS_PRODUCTION", "false")  # an override cannot talk the guard out of it
    assert make_app(None).config["IS_PRODUCTION"] is True
    assert make_app("testing").config["IS_PRODUCTION"] is False
    assert make_app("development").config["IS_PRODUCTION"] is False


def test_seed_demo_refuses_the_production_configuration(production, ctx):
    before = staff_count()
    result = production.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "Refusing to load the demo under the production configuration" in result.output
    assert "Traceback" not in result.output and staff_count() == before


def test_seed_demo_under_production_needs_a_password_of_its_own_even_with_the_override(production, ctx):
    runner = production.test_cli_runner()
    for args in (["--allow-production"], ["--allow-production", "--password", demo.DEMO_PASSWORD],
                 ["--allow-production", "--password", demo.DEMO_PASSWORD.upper()]):
        result = runner.invoke(args=["seed-demo", *args])
        assert result.exit_code != 0, args
        assert "a password of your own" in result.output
    weak = runner.invoke(args=["seed-demo", "--allow-production", "--password", "short1"])
    assert weak.exit_code != 0 and "密码至少需要" in weak.output


def test_seed_demo_with_the_override_and_an_own_password_goes_ahead(production, ctx):
    # The test database already holds the demo: the command gets past the guard and says so.
    result = production.test_cli_runner().invoke(args=["seed-demo", "--allow-production",
                                                       "--password", "Public-demo-2026x"])
    assert result.exit_code == 0, result.output
    assert "already loaded" in result.output


def test_seed_demo_outside_production_is_unchanged(app, ctx):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0 and "already loaded" in result.output


def test_create_admin_refuses_the_published_demo_password_under_production(production, ctx):
    before = staff_count()
    result = production.test_cli_runner().invoke(args=["create-admin", "ops-admin", "--password",
                                                       demo.DEMO_PASSWORD])
    assert result.exit_code != 0
    assert "Refusing a published password" in result.output and "Traceback" not in result.output
    assert staff_count() == before


def test_create_admin_under_production_takes_an_own_or_a_generated_password(production, ctx):
    runner = production.test_cli_runner()
    assert runner.invoke(args=["create-admin", "ops-one", "--password", "Strong-pass-2026"]).exit_code == 0
    generated = runner.invoke(args=["create-admin", "ops-two"], input="\n\n")
    assert generated.exit_code == 0 and "Initial password" in generated.output


def test_create_admin_refuses_the_published_password_everywhere(app, ctx):
    """The password policy refuses the published demo password wherever a person chooses a password (the demo
    accounts have it because seed-demo sets it, not because anyone may choose it)."""
    result = app.test_cli_runner().invoke(args=["create-admin", "dev-admin", "--password", demo.DEMO_PASSWORD])
    assert result.exit_code != 0 and "演示密码" in result.output
    chosen = app.test_cli_runner().invoke(args=["create-admin", "dev-admin", "--password", "Kp4x9Tq2Lm7v-ward"])
    assert chosen.exit_code == 0, chosen.output


# The Server header -------------------------------------------------------------------------------------

VERSION = re.compile(r"\d+\.\d+|werkzeug|python|flask|gunicorn/", re.IGNORECASE)


def served_headers(app, request_handler=None) -> dict[str, list[str]]:
    """The headers of /healthz and /login as a real HTTP server on a free port sends them."""
    import http.client
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=request_handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen: dict[str, list[str]] = {}
    try:
        for path in ("/healthz", "/login"):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            conn.request("GET", path, headers={"Host": "tingjian.test"})
            response = conn.getresponse()
            response.read()
            for name, value in response.getheaders():
                seen.setdefault(name.lower(), []).append(value)
            conn.close()
    finally:
        server.shutdown()
        thread.join(5)
    return seen


@pytest.mark.real_engine
def test_the_embedded_server_names_no_versions(app):
    from core.devserver import RequestHandler

    headers = served_headers(app, RequestHandler)
    assert headers["server"] == ["tingjian", "tingjian"]
    assert not [v for values in headers.values() for v in values if VERSION.search(v) and "max-age" not in v]


@pytest.mark.real_engine
def test_werkzeugs_own_handler_would_name_them(app):
    """The control: the default development handler does send versions (what `flask run` shows)."""
    headers = served_headers(app)
    assert all(VERSION.search(v) for v in headers["server"])


def test_the_apps_own_responses_set_no_server_or_powered_by_header(client, ctx):
    for path in ("/healthz", "/login", "/c/lookup", "/api/v1/discharges"):
        response = client.get(path)
        assert "Server" not in response.headers and "X-Powered-By" not in response.headers, path


def test_make_run_serves_through_flask_serve():
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "flask serve --host 127.0.0.1 --port 5000" in makefile and "flask run" not in makefile
