"""`flask scheduler` and `flask worker` ride out a Redis outage and carry on by themselves when it returns;
an idle worker runs the watchdogs (work the scheduler should have queued, in case it is gone).

Each test runs the real command in a process of its own against a private redis-server that it stops
and starts again on the same port (empty again: it keeps nothing on disk), as bench/faults.py does to
the whole stack.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib
from rq import Queue

from core import ROOT
from tests.core import jobs
from tests.throwaway import start_redis


class PrivateRedis:
    """A redis-server of this test's own, to stop and start again on the same port."""

    def __init__(self, workdir: Path):
        self.workdir = str(workdir)
        self.proc, self.url = start_redis(self.workdir)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def connection(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url, socket_connect_timeout=1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def start(self) -> None:
        self.proc, _url = start_redis(self.workdir, self.port)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def flask_command(database_url, private_redis, tmp_path):
    """Start ``flask <command>`` as production runs it, on the private Redis; (process, its log file)."""
    started: list[subprocess.Popen] = []

    def run(command: str, **settings: str) -> tuple[subprocess.Popen, Path]:
        env = {name: value for name, value in os.environ.items() if not name.startswith("TINGJIAN_")}
        env.update(TINGJIAN_CONFIG="production", TINGJIAN_SECRET_KEY="outage-test-only",
                   TINGJIAN_DATABASE_URL=database_url, TINGJIAN_REDIS_URL=private_redis.url,
                   TINGJIAN_TEST_WATCHDOG_FILE=str(tmp_path / "watchdog"), FLASK_APP="tests.core.jobs:outage_app",
                   **settings)
        log = tmp_path / f"{command}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "flask", command], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        return proc, log

    yield run
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_until(check, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except redis_lib.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds:.0f} s: {what}" + (f"\n{log.read_text()}" if log else ""))


def stops_cleanly(proc: subprocess.Popen) -> int:
    """SIGTERM, as systemd stops a unit; the exit code."""
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.wait(20)


def test_the_scheduler_rides_out_a_redis_outage_and_queues_again_when_it_returns(private_redis, flask_command):
    proc, log = flask_command("scheduler")
    queued = lambda: Queue("default", connection=private_redis.connection()).count  # noqa: E731
    wait_until(lambda: queued() >= 1, 30, "the scheduler queued its first tick", log)

    private_redis.stop()
    time.sleep(3)  # ticks fall due while Redis is away
    assert proc.poll() is None, log.read_text()
    private_redis.start()  # empty again

    wait_until(lambda: queued() >= 1, 20, "the scheduler queued a tick after Redis came back", log)
    # The line is written once the whole tick went through (queued, then the heartbeat): wait for it too.
    wait_until(lambda: "Redis is back" in log.read_text(), 10, "the scheduler said Redis is back", log)
    assert proc.poll() is None
    text = log.read_text()
    assert text.count("Redis unreachable") == 1, text  # one line per outage, not one per attempt
    assert "Redis is back" in text
    assert "Traceback" not in text
    assert stops_cleanly(proc) == 0, log.read_text()


def test_the_worker_carries_on_after_redis_went_away_while_it_ran_a_job(private_redis, flask_command, tmp_path):
    proc, log = flask_command("worker")
    first, second = tmp_path / "first", tmp_path / "second"
    Queue("default", connection=private_redis.connection()).enqueue(jobs.touch, str(first), 3)
    wait_until(Path(f"{first}.started").exists, 30, "the worker started the first job", log)

    private_redis.stop()
    wait_until(first.exists, 10, "the first job finished", log)
    time.sleep(1)
    private_redis.start()  # empty again
    Queue("default", connection=private_redis.connection()).enqueue(jobs.touch, str(second))

    wait_until(second.exists, 30, "the worker ran a job queued after Redis came back", log)
    assert proc.poll() is None, log.read_text()
    assert stops_cleanly(proc) == 0, log.read_text()


def test_an_idle_worker_runs_the_watchdogs_every_few_seconds(flask_command, tmp_path):
    proc, log = flask_command("worker", TINGJIAN_WORKER_WATCHDOG_SECONDS="1")
    ran = tmp_path / "watchdog"

    wait_until(lambda: ran.exists() and ran.read_text().count("ran") >= 2, 30, "the watchdog ran twice", log)

    assert proc.poll() is None
    assert stops_cleanly(proc) == 0, log.read_text()
