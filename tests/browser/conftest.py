"""Playwright driving Debian's chromium against a live server on this machine.

The server runs in a thread, single-threaded, on the same app and the same
per-test transaction as the rest of the suite, so a test can arrange rows,
click through pages, and check the database afterwards.
"""
from __future__ import annotations

import shutil
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def live_server(app, _transaction):
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    original = app.config.get("SERVER_NAME")
    app.config["SERVER_NAME"] = f"127.0.0.1:{server.server_port}"
    try:
        yield base
    finally:
        app.config["SERVER_NAME"] = original
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not shutil.which("chromium") and not shutil.os.path.exists(CHROMIUM):
        pytest.exit("chromium is not installed (apt-get install -y chromium fonts-noto-cjk); "
                    "browser tests never skip", returncode=3)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                                          "--disable-background-networking", "--disable-component-update",
                                          "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def phone(browser):
    """A phone-sized page, as a patient inside WeChat would have (375 px wide, touch, zh-CN)."""
    context = browser.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="zh-CN",
                                  user_agent="Mozilla/5.0 (Linux; Android 12) AppleWebKit/537.36 (KHTML, like Gecko) "
                                             "Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0.40")
    yield context.new_page()
    context.close()


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    yield context.new_page()
    context.close()


@pytest.fixture
def shots(tmp_path_factory):
    """Where screenshots go; set TINGJIAN_SHOTS to keep them."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("TINGJIAN_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
