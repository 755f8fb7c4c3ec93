"""Fixtures for the core tests: fresh apps built next to the shared session app."""
from __future__ import annotations

import os

import pytest

from core import create_app
from core.extensions import db


@pytest.fixture
def clean_env(monkeypatch):
    """No TINGJIAN_* setting from the caller's shell leaks into the app under test."""
    for name in list(os.environ):
        if name.startswith("TINGJIAN_") and not name.startswith("TINGJIAN_TEST_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def make_app(clean_env, tmp_path):
    """Build a separate app (its own engine and instance folder); disposed after the test.

    Use it instead of changing the session app's configuration or routes.
    """
    apps = []

    def build(config: str | None = "testing", **overrides):
        """``config`` None: chosen by TINGJIAN_CONFIG, as wsgi.py does."""
        overrides.setdefault("INSTANCE_PATH", str(tmp_path / f"instance-{len(apps)}"))
        if config is not None:
            overrides["CONFIG"] = config
        app = create_app(overrides)
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
