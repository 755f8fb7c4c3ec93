"""Configuration: secrets only from the environment, TINGJIAN_ overrides, per-mode defaults."""
from __future__ import annotations

import stat

import pytest
from sqlalchemy import text

from core import create_app
from core.config import Development, Production
from core.extensions import db


def test_production_refuses_to_start_without_secret_key_and_database_url(clean_env, tmp_path):
    with pytest.raises(RuntimeError) as error:
        create_app({"CONFIG": "production", "INSTANCE_PATH": str(tmp_path)})
    message = str(error.value)
    assert "TINGJIAN_SECRET_KEY" in message
    assert "TINGJIAN_DATABASE_URL" in message


def test_production_names_only_the_setting_that_is_missing(clean_env, tmp_path):
    clean_env.setenv("TINGJIAN_SECRET_KEY", "a-long-production-secret")
    with pytest.raises(RuntimeError) as error:
        create_app({"CONFIG": "production", "INSTANCE_PATH": str(tmp_path)})
    assert "TINGJIAN_DATABASE_URL" in str(error.value)
    assert "TINGJIAN_SECRET_KEY" not in str(error.value)


def test_production_does_not_write_a_secret_key_file(clean_env, tmp_path):
    with pytest.raises(RuntimeError):
        create_app({"CONFIG": "production", "INSTANCE_PATH": str(tmp_path)})
    assert not (tmp_path / "secret_key").exists()


def test_tingjian_prefixed_environment_variables_override_settings(clean_env, make_app, database_url):
    clean_env.setenv("TINGJIAN_CONFIG", "production")
    clean_env.setenv("TINGJIAN_SECRET_KEY", "from-the-environment")
    clean_env.setenv("TINGJIAN_DATABASE_URL", database_url)
    clean_env.setenv("TINGJIAN_LOGIN_FREE_FAILURES", "3")  # parsed as JSON: an int
    clean_env.setenv("TINGJIAN_SCHEDULER_TIMEZONE", "Asia/Urumqi")
    app = make_app(None)
    assert app.config["CONFIG_NAME"] == "Production"
    assert app.secret_key == "from-the-environment"
    assert app.config["LOGIN_FREE_FAILURES"] == 3
    assert app.config["SCHEDULER_TIMEZONE"] == "Asia/Urumqi"


def test_explicit_overrides_win_over_the_environment(clean_env, make_app, database_url):
    clean_env.setenv("TINGJIAN_LOGIN_FREE_FAILURES", "3")
    app = make_app(DATABASE_URL=database_url, LOGIN_FREE_FAILURES=7)
    assert app.config["LOGIN_FREE_FAILURES"] == 7


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_postgres_urls_are_rewritten_to_the_psycopg_driver(clean_env, make_app, database_url, scheme):
    plain = database_url.replace("postgresql+psycopg://", scheme, 1)
    clean_env.setenv("TINGJIAN_DATABASE_URL", plain)
    app = make_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == database_url
    with app.app_context():
        assert db.engine.url.drivername == "postgresql+psycopg"
        assert db.session.execute(text("SELECT 1")).scalar() == 1


def test_development_creates_a_private_per_install_secret_key_in_the_instance_folder(make_app, tmp_path):
    instance = tmp_path / "install"
    first = make_app("development", INSTANCE_PATH=str(instance))
    key_file = instance / "secret_key"
    assert first.instance_path == str(instance)
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.secret_key == key_file.read_text().strip()
    assert len(first.secret_key) == 64
    # A restart reads the same key, so sessions survive it.
    second = make_app("development", INSTANCE_PATH=str(instance))
    assert second.secret_key == first.secret_key


def test_two_installs_get_different_secret_keys(make_app, tmp_path):
    one = make_app("development", INSTANCE_PATH=str(tmp_path / "one"))
    two = make_app("development", INSTANCE_PATH=str(tmp_path / "two"))
    assert one.secret_key != two.secret_key


def test_development_keeps_its_sqlite_database_in_the_instance_folder(make_app, tmp_path):
    app = make_app("development", INSTANCE_PATH=str(tmp_path / "install"))
    assert app.config["CONFIG_NAME"] == Development.__name__
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'install' / 'tingjian.db'}"
    assert app.extensions["redis"] is None  # embedded: jobs inline, rate limits counted in the process


def test_development_uses_a_secret_key_from_the_environment_instead_of_a_file(clean_env, make_app, tmp_path):
    clean_env.setenv("TINGJIAN_SECRET_KEY", "set-by-the-operator")
    app = make_app("development", INSTANCE_PATH=str(tmp_path / "install"))
    assert app.secret_key == "set-by-the-operator"
    assert not (tmp_path / "install" / "secret_key").exists()


def test_production_sets_secure_cookies_and_hsts(clean_env, make_app, database_url):
    clean_env.setenv("TINGJIAN_SECRET_KEY", "a-long-production-secret")
    clean_env.setenv("TINGJIAN_DATABASE_URL", database_url)
    app = make_app("production")
    assert app.config["CONFIG_NAME"] == Production.__name__
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True

    response = app.test_client().get("/login")  # the form's CSRF token starts a session
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_development_sends_no_hsts_header(make_app, tmp_path):
    app = make_app("development", INSTANCE_PATH=str(tmp_path / "install"))
    response = app.test_client().get("/login")
    assert "Strict-Transport-Security" not in response.headers
    assert "Secure" not in response.headers["Set-Cookie"]


def test_an_unknown_configuration_name_is_refused(clean_env, tmp_path):
    with pytest.raises(RuntimeError, match="Unknown configuration 'staging'"):
        create_app({"CONFIG": "staging", "INSTANCE_PATH": str(tmp_path)})
