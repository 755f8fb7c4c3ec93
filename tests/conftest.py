"""Test fixtures: a throw-away PostgreSQL database and a throw-away redis-server per run.

The database is created in the machine's PostgreSQL, or in a throw-away cluster that the run starts
when there is none (tests/throwaway.py). Under pytest-xdist each worker is a run of its own: its own
database, its own redis-server.

Each test runs inside one outer transaction that is rolled back afterwards;
the app's session works on savepoints, so a view's commit and rollback behave
as in production but leave nothing behind.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import threading
import uuid

import psycopg
import pytest
import redis as redis_lib
from flask import g, has_app_context
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from core.extensions import db
from tests import throwaway

# Set to share an existing Redis; by default each run starts a throw-away redis-server of its own,
# so two runs on one machine never see (or flush) each other's counters and queues.
REDIS_URL = os.environ.get("TINGJIAN_TEST_REDIS", "")
# The run's own PostgreSQL cluster, when pytest_sessionstart had to start one (tests/throwaway.py).
_cluster: throwaway.ThrowawayPostgres | None = None
_pg_configured = os.environ.get("TINGJIAN_TEST_PG")
_pg_reason = ""


def _fail(message: str) -> None:
    pytest.exit(f"\n\n*** {message} ***\nThe test suite needs the real services; it never skips them.\n", returncode=3)


def pytest_sessionstart(session):
    """Once per run, before pytest-xdist starts its workers: check that redis-server can be started and choose
    the PostgreSQL (see tests/throwaway.py), starting a throw-away cluster when needed. The workers inherit
    the choice through TINGJIAN_TEST_PG, and each creates its own database in it."""
    global _cluster, _pg_reason
    if hasattr(session.config, "workerinput"):
        return
    try:
        if not REDIS_URL:
            throwaway.redis_binary()
        plan = throwaway.plan_postgres(_pg_configured)
        if plan.dsn is None:
            _cluster = throwaway.start_postgres()
    except throwaway.ServiceUnavailable as exc:
        _fail(str(exc))
        return
    _pg_reason = plan.reason
    os.environ["TINGJIAN_TEST_PG"] = _cluster.dsn if _cluster else str(plan.dsn)


def pytest_report_header(config):
    if _cluster:
        return [f"postgresql: {_pg_reason}, on port {_cluster.port} (stopped and removed at the end)"]
    return [f"postgresql: {_pg_reason}"] if _pg_reason else []


def pytest_unconfigure(config):
    global _cluster
    if _cluster:
        _cluster.stop()
        _cluster = None
    if _pg_configured is None:
        os.environ.pop("TINGJIAN_TEST_PG", None)
    else:
        os.environ["TINGJIAN_TEST_PG"] = _pg_configured


def _shared_redis_url() -> str:
    """TINGJIAN_TEST_REDIS, with the database number moved up by the pytest-xdist worker's number (gw1: +1),
    so that the workers of one run never flush each other's database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    if not offset:
        return REDIS_URL
    base, _slash, number = REDIS_URL.rpartition("/")
    if not base.startswith("redis") or not number.isdigit():
        _fail(f"TINGJIAN_TEST_REDIS must end in a database number (…/14) to be shared by test workers: {REDIS_URL}")
    return f"{base}/{int(number) + offset}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    if REDIS_URL:
        url = _shared_redis_url()
        try:
            conn = redis_lib.Redis.from_url(url, socket_connect_timeout=3)
            conn.ping()
        except redis_lib.RedisError as exc:
            _fail(f"Redis is unreachable at {url}: {exc}")
        conn.flushdb()
        yield url
        conn.flushdb()
        return
    try:
        proc, url = throwaway.start_redis(str(tmp_path_factory.mktemp("redis")))
    except throwaway.ServiceUnavailable as exc:
        _fail(str(exc))
    try:
        yield url
    finally:
        throwaway.stop_process(proc)


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    """An admin connection to the run's PostgreSQL, as pytest_sessionstart chose it."""
    return os.environ["TINGJIAN_TEST_PG"]


@pytest.fixture(scope="session")
def database_url(admin_dsn) -> str:
    name = f"tingjian_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        _fail(f"PostgreSQL is unreachable at {admin_dsn}: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def app(database_url, redis_url):
    import flask_migrate

    from core import create_app
    from core.extensions import db
    from organisation import demo

    app = create_app({"CONFIG": "testing", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                      "JOBS_INLINE": True, "SERVER_NAME": "tingjian.test"})
    with app.app_context():
        flask_migrate.upgrade()
        demo.seed(demo.DEMO_PASSWORD)  # shared, committed fixture data; tests roll back on top of it
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_rate_limits(redis_url, monkeypatch):
    """Each test starts with no rate-limit counts (they live in Redis, or in the process when it is away),
    and all its requests fall in one window: a minute that turned over mid-test would reset the counts."""
    from core import backoff, ratelimit

    frozen = ratelimit._clock()
    monkeypatch.setattr(ratelimit, "_clock", lambda: frozen)

    conn = redis_lib.Redis.from_url(redis_url)
    keys = list(conn.scan_iter("tj:rl:*", count=1000))
    if keys:
        conn.delete(*keys)
    conn.close()
    ratelimit.reset_local()
    backoff.reset_local()


@contextlib.contextmanager
def rolled_back_connection(app):
    """The app's sessions bound to one connection in an outer transaction, rolled back at the end; a session's
    own commits become savepoints (see module docstring)."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        conn = engine.connect()
        outer = conn.begin()
        engines[None] = conn
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
    try:
        yield conn
    finally:
        with app.app_context():
            db.session.remove()
            engines[None] = engine
        outer.rollback()
        conn.close()


@pytest.fixture(autouse=True)
def _transaction(request, app):
    """Wrap each test in a transaction that is rolled back (see module docstring)."""
    if request.node.get_closest_marker("real_engine"):
        yield None
        return
    with rolled_back_connection(app) as conn:
        yield conn


@pytest.fixture
def ctx(app):
    """An app context plus a request context, for calling services directly."""
    with app.test_request_context():
        yield


class RequestClient(FlaskClient):
    """A test client whose every request starts and ends like a real one.

    The ``ctx`` fixture keeps an app context pushed, and Flask reuses it for the
    client's requests, so without this ``g`` (where Flask-Login caches the
    current user) and ``db.session`` would carry over from the test and from
    earlier requests. Setup rows are committed first (to the per-test savepoint,
    still rolled back after the test) so that a view's rollback cannot undo them,
    and whatever the view left uncommitted is rolled back afterwards, as the end
    of a real request would, so a view that forgets to commit is caught.
    """

    def open(self, *args, **kwargs):
        if not has_app_context():
            return super().open(*args, **kwargs)
        db.session.commit()
        for key in list(g):
            g.pop(key)
        try:
            return super().open(*args, **kwargs)
        finally:
            db.session.rollback()


_networks = itertools.count(1)


def make_client(app, remote_addr: str | None = None) -> RequestClient:
    """A browser with its own cookie jar on its own network (per-IP limits never leak between tests)."""
    client = RequestClient(app, app.response_class, use_cookies=True)
    n = next(_networks)
    client.environ_base["REMOTE_ADDR"] = remote_addr or f"10.{(n // 250) % 250}.{n % 250}.7"
    return client


@pytest.fixture
def client(app):
    return make_client(app)


@pytest.fixture
def new_client(app):
    """Another browser: ``new_client()`` or ``new_client("10.1.2.3")`` to share a network."""
    return lambda remote_addr=None: make_client(app, remote_addr)


@pytest.fixture
def redis_conn(app):
    return app.extensions["redis"]


def pytest_configure(config):
    if REDIS_URL and getattr(config.option, "numprocesses", None) and not REDIS_URL.rpartition("/")[2].isdigit():
        raise pytest.UsageError("TINGJIAN_TEST_REDIS must end in a database number (e.g. redis://127.0.0.1:6379/14) "
                                "when the tests run on several workers: each worker takes the next number")
    config.addinivalue_line("markers", "real_engine: run without the per-test transaction swap")
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright")


# Shared tenants and the notification outbox ----------------------------------

@pytest.fixture
def rmyy(ctx):
    """The demo general hospital (三级甲等综合)."""
    from tests.factories import demo_institution

    return demo_institution("rmyy")


@pytest.fixture
def zyy(ctx):
    """The demo TCM hospital in the same district (二级甲等中医), for tenant isolation."""
    from tests.factories import demo_institution

    return demo_institution("zyy")


@pytest.fixture
def outbox(app):
    """Messages sent through core.notify while the test runs (memory backend), restored afterwards."""
    from core import notify

    previous = app.config.get("NOTIFIER_BACKEND")
    app.config["NOTIFIER_BACKEND"] = "memory"
    with app.app_context():
        messages = notify.outbox()
        messages.clear()
    yield messages
    messages.clear()
    app.config["NOTIFIER_BACKEND"] = previous


# Browsers -----------------------------------------------------------------
# Playwright driving Debian's chromium against a live server on this machine.
# The server runs in a thread, single-threaded, on the same app and the same
# per-test transaction as the rest of the suite, so a test can arrange rows,
# click through pages, and check the database afterwards. The fixtures live
# here (not in tests/browser/) so that any feature's tests can use them with
# one Playwright session per run.

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

    if not shutil.which("chromium") and not os.path.exists(CHROMIUM):
        # fail (not pytest.exit, which kills an xdist worker and hides this message): never skip
        pytest.fail("chromium is not installed (apt-get install -y chromium fonts-noto-cjk); "
                    "browser tests never skip", pytrace=False)
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

