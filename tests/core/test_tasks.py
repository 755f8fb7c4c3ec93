"""The job seam: inline without Redis, real RQ jobs on a FlaskWorker with Redis."""
from __future__ import annotations

import logging
import os
import signal

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import delete

from core import worker as worker_module
from core.audit import AuditEntry
from core.extensions import db
from core.tasks import (
    HEARTBEAT_KEY,
    QUEUES,
    current_job_id,
    enqueue,
    enqueue_after_commit,
    heartbeat,
    periodic_jobs,
    register_periodic,
    run_committed_jobs,
)
from core.worker import FlaskWorker
from organisation.models import Region
from tests import factories
from tests.core import jobs


@pytest.fixture
def inline_app(make_app, database_url):
    """No REDIS_URL at all: the embedded mode's job seam."""
    return make_app(DATABASE_URL=database_url)


@pytest.fixture
def rq_app(make_app, database_url, redis_url, monkeypatch):
    """Redis configured and JOBS_INLINE off: jobs go to RQ. Queues start and end empty."""
    app = make_app(DATABASE_URL=database_url, REDIS_URL=redis_url, JOBS_INLINE=False)
    conn = app.extensions["redis"]
    queues = [Queue(name, connection=conn) for name in QUEUES]
    for queue in queues:
        queue.empty()
    monkeypatch.setattr(worker_module, "_app", app)  # what `flask worker` hands over via use_app()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield app
    for sig, handler in handlers.items():  # RQ's work() installs its own
        signal.signal(sig, handler)
    for queue in queues:
        queue.empty()
    conn.delete(HEARTBEAT_KEY)


def run_worker(app) -> None:
    """A forking FlaskWorker in burst mode on every queue, as `flask worker --burst` runs it."""
    FlaskWorker(list(QUEUES), connection=app.extensions["redis"]).work(burst=True, logging_level="WARNING")


@pytest.fixture
def committed_region(rq_app):
    """A region committed for real (workers see committed data only), removed afterwards."""
    with rq_app.app_context():
        region = factories.make_region()
        db.session.commit()
        region_id, name = region.id, region.name
    yield region_id, name
    with rq_app.app_context():
        db.session.execute(delete(AuditEntry).where(AuditEntry.target_type == "region",
                                                    AuditEntry.target_id == str(region_id)))
        db.session.execute(delete(Region).where(Region.id == region_id))
        db.session.commit()


# Inline mode -------------------------------------------------------------

def test_enqueue_runs_the_job_inline_without_redis(inline_app, caplog):
    caplog.set_level(logging.INFO, logger=jobs.__name__)
    with inline_app.app_context():
        job = enqueue(jobs.echo, 42)
    assert job.id.startswith("inline-")
    assert job.is_finished and not job.is_failed
    assert job.result == 42
    assert f"[job {job.id}] working on 42" in caplog.messages


def test_an_inline_job_knows_its_id_only_while_it_runs(inline_app):
    with inline_app.app_context():
        job = enqueue(jobs.own_job_id)
        assert job.result == job.id
        assert current_job_id() is None


def test_inline_jobs_run_in_the_callers_app_context_and_transaction(app, ctx):
    region = factories.make_region()  # flushed, not committed: the caller's own session sees it
    job = enqueue(jobs.region_name, region.id)
    assert job.result == region.name


def test_a_failing_inline_job_does_not_raise_and_is_marked_failed(inline_app, caplog):
    caplog.set_level(logging.INFO, logger="core.tasks")
    with inline_app.app_context():
        job = enqueue(jobs.fail, "the sentiment model is missing")
    assert job.is_failed and not job.is_finished
    assert job.result is None
    assert "RuntimeError: the sentiment model is missing" in job.exc_info
    failure = next(r for r in caplog.records if r.name == "core.tasks" and r.levelno == logging.ERROR)
    assert failure.getMessage() == f"[job {job.id}] inline job fail failed"
    assert failure.exc_info is not None


def test_jobs_inline_runs_jobs_inline_even_when_redis_is_configured(app, ctx, redis_conn):
    assert app.config["JOBS_INLINE"] is True
    job = enqueue(jobs.echo, "x")
    assert job.id.startswith("inline-") and job.result == "x"
    assert all(Queue(name, connection=redis_conn).count == 0 for name in QUEUES)


def test_enqueue_refuses_an_unknown_queue(inline_app):
    with inline_app.app_context(), pytest.raises(ValueError, match="unknown queue 'urgent'"):
        enqueue(jobs.echo, 1, queue="urgent")


# RQ mode -----------------------------------------------------------------

def test_enqueue_puts_a_real_rq_job_on_redis(rq_app):
    with rq_app.app_context():
        job = enqueue(jobs.echo, "hello", queue="high")
    assert isinstance(job, Job)
    conn = rq_app.extensions["redis"]
    assert Queue("high", connection=conn).job_ids == [job.id]
    assert Job.fetch(job.id, connection=conn).get_status() == "queued"


def test_a_flask_worker_runs_the_job_inside_an_app_context(rq_app, committed_region):
    region_id, name = committed_region
    with rq_app.app_context():
        job = enqueue(jobs.region_name, region_id)
    run_worker(rq_app)
    job.refresh()
    assert job.is_finished, job.latest_result().exc_string if job.latest_result() else job.get_status()
    assert job.return_value() == name


def test_a_worker_sees_only_committed_rows(rq_app):
    with rq_app.app_context():
        region = factories.make_region()  # flushed in this session, never committed
        job = enqueue(jobs.region_name, region.id)
        run_worker(rq_app)
        db.session.rollback()
    job.refresh()
    assert job.is_finished
    assert job.return_value() is None


def test_a_failing_rq_job_is_marked_failed_and_the_worker_carries_on(rq_app):
    with rq_app.app_context():
        failing = enqueue(jobs.fail, "boom")
        following = enqueue(jobs.echo, "after")
    run_worker(rq_app)
    failing.refresh()
    following.refresh()
    assert failing.is_failed
    assert "RuntimeError: boom" in failing.latest_result().exc_string
    assert following.is_finished and following.return_value() == "after"


def test_heartbeat_writes_the_redis_key_and_healthz_reports_it(rq_app):
    conn = rq_app.extensions["redis"]
    conn.delete(HEARTBEAT_KEY)
    assert rq_app.test_client().get("/healthz").get_json()["scheduler_heartbeat"] is None
    with rq_app.app_context():
        job = enqueue(heartbeat, queue="low")
    run_worker(rq_app)
    job.refresh()
    assert job.is_finished
    stamp = job.return_value()
    assert conn.get(HEARTBEAT_KEY).decode() == stamp
    assert 0 < conn.ttl(HEARTBEAT_KEY) <= 3600
    body = rq_app.test_client().get("/healthz").get_json()
    assert body["scheduler_heartbeat"] == stamp
    assert body["redis"] == "ok"
    assert body["jobs"] == "rq"


def test_flask_worker_burst_runs_queued_jobs(rq_app, monkeypatch):
    monkeypatch.setattr(worker_module, "_app", None)  # the command hands over its own app
    with rq_app.app_context():
        job = enqueue(jobs.echo, "from the command")
    result = rq_app.test_cli_runner().invoke(args=["worker", "--burst", "--queue", "default"])
    assert result.exit_code == 0, result.output
    job.refresh()
    assert job.is_finished and job.return_value() == "from the command"
    assert worker_module._app is rq_app


def test_enqueue_runs_the_job_inline_when_redis_is_down_so_no_work_is_lost(make_app, database_url, caplog):
    app = make_app(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0", JOBS_INLINE=False)
    with app.app_context():
        job = enqueue(jobs.echo, 1)
    assert job.id.startswith("inline-") and job.is_finished and job.result == 1
    assert "Redis unavailable: running echo inline" in caplog.text


# Commands and periodic jobs ------------------------------------------------

def test_flask_worker_refuses_an_unknown_queue(rq_app):
    result = rq_app.test_cli_runner().invoke(args=["worker", "--burst", "--queue", "urgent"])
    assert result.exit_code == 2
    assert "'urgent' is not one of 'high', 'default', 'low'" in result.output


def test_flask_worker_without_redis_exits_with_a_clear_message(inline_app):
    result = inline_app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 1
    assert "REDIS_URL is not set" in result.output


def test_flask_scheduler_without_redis_exits_without_changing_the_time_zone(inline_app):
    before = os.environ.get("TZ")
    result = inline_app.test_cli_runner().invoke(args=["scheduler"])
    assert result.exit_code == 1
    assert "REDIS_URL is not set" in result.output
    assert os.environ.get("TZ") == before


def test_flask_scheduler_list_prints_the_registered_periodic_jobs(make_app, database_url):
    app = make_app(DATABASE_URL=database_url)
    register_periodic(app, jobs.echo, name="nightly-echo", cron="0 2 * * *", queue="default")
    result = app.test_cli_runner().invoke(args=["scheduler", "--list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(periodic_jobs(app))  # one line per job, features add their own
    assert "heartbeat: core.tasks.heartbeat [every 60s] -> low" in lines
    assert lines[-1] == "nightly-echo: tests.core.jobs.echo [0 2 * * *] -> default"


@pytest.mark.parametrize("schedule", [{}, {"cron": "* * * * *", "interval": 60}])
def test_a_periodic_job_needs_exactly_one_schedule(make_app, database_url, schedule):
    app = make_app(DATABASE_URL=database_url)
    before = periodic_jobs(app)
    with pytest.raises(ValueError, match="exactly one"):
        register_periodic(app, jobs.echo, name="bad", **schedule)
    assert periodic_jobs(app) == before


def test_try_enqueue_queues_like_enqueue_and_turns_a_queueing_failure_into_a_log_line(rq_app, monkeypatch, caplog):
    """A committed change whose job cannot be queued is left to its sweep, never an error page."""
    from core import tasks

    with rq_app.app_context():
        job = tasks.try_enqueue(jobs.echo, "queued")
        assert job is not None and job.get_status() == "queued"

        def unreachable(*args, **kwargs):
            raise ConnectionError("no route to the queue")

        monkeypatch.setattr(tasks, "enqueue", unreachable)
        with caplog.at_level(logging.ERROR):
            assert tasks.try_enqueue(jobs.echo, "lost") is None
    assert "could not queue echo" in caplog.text


# Jobs that wait for the commit --------------------------------------------------------------------

@pytest.fixture
def ran():
    jobs.RAN.clear()
    yield jobs.RAN
    jobs.RAN.clear()


def test_a_job_queued_for_after_the_commit_runs_only_once_the_transaction_commits(app, ctx, ran):
    enqueue_after_commit(jobs.remember, "kept")
    assert run_committed_jobs() == 0 and ran == []  # not committed yet
    db.session.commit()
    assert run_committed_jobs() == 1 and ran == ["kept"]


def test_a_job_queued_for_after_the_commit_is_dropped_when_the_transaction_rolls_back(app, ctx, ran):
    enqueue_after_commit(jobs.remember, "dropped")
    db.session.rollback()
    db.session.commit()
    assert run_committed_jobs() == 0 and ran == []


def test_an_inline_job_runs_what_it_queued_for_after_its_commit_when_it_returns(app, ctx, ran):
    result = enqueue(jobs.remember_after_commit, "follow-up")
    assert result.is_finished and ran == ["follow-up"]


def test_with_redis_a_job_queued_for_after_the_commit_goes_to_rq_at_the_commit(rq_app):
    queue = Queue("default", connection=rq_app.extensions["redis"])
    with rq_app.app_context():
        enqueue_after_commit(jobs.echo, "later")
        assert queue.count == 0
        db.session.commit()
        assert queue.count == 1
        enqueue_after_commit(jobs.echo, "never")
        db.session.rollback()
        db.session.commit()
    assert queue.count == 1 and queue.jobs[0].args == ("later",)
