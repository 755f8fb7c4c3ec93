"""`make test` on a fresh machine: without a usable PostgreSQL the run starts a throw-away cluster of its own,
and without the binaries to start one it stops and names the Debian package (tests/throwaway.py)."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests import throwaway

ROOT = Path(__file__).resolve().parent.parent


def closed_port_dsn() -> str:
    return f"postgresql://root@127.0.0.1:{throwaway.free_port()}/postgres"


def refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def clean_env(**extra: str) -> dict[str, str]:
    """This run's environment without its own choice of services or pytest-xdist worker identity."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("TINGJIAN_TEST_", "PYTEST_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def run_pytest(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """A pytest run of ``folder`` that loads tests/conftest.py as a plugin, as `make test` loads it as a conftest."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-c", str(folder / "pytest.ini"), "--rootdir", str(folder),
                           "-p", "no:cacheprovider", *args, str(folder)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


# Choosing the server -----------------------------------------------------------------------------


def test_a_default_server_that_does_not_answer_means_a_throw_away_cluster():
    plan = throwaway.plan_postgres(None, default=closed_port_dsn())
    assert plan.dsn is None
    assert "throw-away cluster" in plan.reason and "Connection refused" in plan.reason


def test_a_configured_server_that_does_not_answer_fails_the_run_rather_than_being_replaced():
    dsn = closed_port_dsn()
    with pytest.raises(throwaway.ServiceUnavailable, match=re.escape(dsn)):
        throwaway.plan_postgres(dsn)


def test_a_usable_server_is_used_and_throwaway_forces_a_cluster_of_its_own(admin_dsn):
    assert throwaway.plan_postgres(None, default=admin_dsn).dsn == admin_dsn
    assert throwaway.plan_postgres(admin_dsn).dsn == admin_dsn
    assert throwaway.plan_postgres(throwaway.THROWAWAY, default=admin_dsn).dsn is None


def test_without_the_server_programs_the_error_names_the_debian_package(monkeypatch, tmp_path):
    (tmp_path / "initdb").write_text("#!/bin/sh\n")  # one program of three is not enough
    (tmp_path / "initdb").chmod(0o755)
    monkeypatch.setenv("TINGJIAN_TEST_PG_BIN", str(tmp_path))
    with pytest.raises(throwaway.ServiceUnavailable, match=re.escape("apt-get install -y postgresql")):
        throwaway.postgres_bindir()


# The cluster itself ------------------------------------------------------------------------------


def test_a_throw_away_cluster_takes_connections_and_leaves_nothing_behind():
    cluster = throwaway.start_postgres()
    try:
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "tingjian_probe"')
            row = conn.execute("SELECT current_setting('data_directory'), current_setting('fsync')").fetchone()
        data_dir, fsync = row
        assert cluster.port != 5432 and data_dir == str(cluster.data) and fsync == "off"
    finally:
        cluster.stop()
    assert not cluster.base.exists()
    assert refuses_connections(cluster.port)


def test_a_cluster_left_by_a_run_that_died_is_stopped_and_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    cluster = throwaway.start_postgres()
    (cluster.base / "owner").write_text(dead.stdout.strip())
    try:
        assert throwaway.sweep_stale_clusters(cluster.bindir) >= 1
        assert not cluster.base.exists() and refuses_connections(cluster.port)
    finally:
        cluster.stop()


# A whole run -------------------------------------------------------------------------------------

RUN_CONFTEST = """
import tests.throwaway

tests.throwaway.DEFAULT_PG = {default!r}  # the machine's server, made unreachable for this run
pytest_plugins = ["tests.conftest"]
"""

RUN_TEST = """
import os

import psycopg
import pytest
from sqlalchemy import func, select

from core.extensions import db
from organisation.models import Institution


@pytest.mark.parametrize("n", range(2))
def test_each_worker_has_its_own_database_in_the_run_cluster(ctx, database_url, admin_dsn, n):
    assert db.session.scalar(select(func.count()).select_from(Institution)) >= 3  # migrated, demo loaded
    database = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_dsn) as conn:
        data_dir = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
    with open(os.environ["RUN_REPORT"], "a") as report:
        report.write(f"{data_dir} {database}\\n")
"""


def test_a_run_without_a_usable_server_passes_on_a_throw_away_cluster_and_stops_it(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    report = tmp_path / "report.txt"
    default = closed_port_dsn()
    (folder / "conftest.py").write_text(RUN_CONFTEST.format(default=default))
    (folder / "test_run.py").write_text(textwrap.dedent(RUN_TEST))

    done = run_pytest(folder, clean_env(RUN_REPORT=str(report)), "-n", "2", "--dist", "each")

    assert done.returncode == 0, done.stdout + done.stderr
    header = re.search(r"postgresql: throw-away cluster \((.*) is not usable: .*, on port (\d+)", done.stdout)
    assert header and header.group(1) == default, done.stdout
    rows = [line.split() for line in report.read_text().splitlines()]
    data_dirs = {data_dir for data_dir, _db in rows}
    # --dist each: both workers run both tests, each in its own database, both in the one cluster of the run
    assert len(rows) == 4 and len(data_dirs) == 1 and len({db for _dir, db in rows}) == 2
    assert "tingjian-pg-" in data_dirs.pop()
    assert refuses_connections(int(header.group(2)))
    assert not any(Path(data_dir).exists() for data_dir, _db in rows)


def test_a_run_without_the_server_programs_fails_loudly_naming_the_debian_package(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "conftest.py").write_text(RUN_CONFTEST.format(default=closed_port_dsn()))
    (folder / "test_run.py").write_text("def test_never_reached():\n    pass\n")

    done = run_pytest(folder, clean_env(TINGJIAN_TEST_PG_BIN=str(tmp_path / "nothing")), "-n", "2")

    assert done.returncode == 3, done.stdout + done.stderr
    assert "apt-get install -y postgresql" in done.stdout and "never skips" in done.stdout
    assert "passed" not in done.stdout and "skipped" not in done.stdout
