"""flask worker / flask scheduler (and flask serve, core.devserver). Features add their own commands."""
from __future__ import annotations

import os
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from core.tasks import QUEUES, heartbeat, periodic_jobs, register_periodic


def _redis_or_exit():
    conn = current_app.extensions.get("redis")
    if conn is None:
        raise click.ClickException("REDIS_URL is not set (TINGJIAN_REDIS_URL); jobs run inline without a worker.")
    return conn


@click.command("worker")
@click.option("--queue", "-q", "queues", multiple=True, type=click.Choice(QUEUES),
              help="Queues to listen on (default: all, by priority).")
@click.option("--burst", is_flag=True, help="Quit when the queues are empty.")
@click.option("--with-scheduler", is_flag=True, help="Also run RQ's delayed-job scheduler.")
@with_appcontext
def worker_command(queues: tuple[str, ...], burst: bool, with_scheduler: bool) -> None:
    """Run an RQ worker with an app context around every job; it waits out a Redis outage."""
    from core.worker import run_worker, use_app

    conn = _redis_or_exit()
    # Flask types the current_app proxy as Flask itself, so mypy does not know the proxy's own method.
    use_app(current_app._get_current_object())  # type: ignore[attr-defined]
    run_worker(list(queues or QUEUES), conn, burst=burst, with_scheduler=with_scheduler)


@click.command("scheduler")
@click.option("--list", "list_only", is_flag=True, help="Print the periodic jobs and exit.")
@with_appcontext
def scheduler_command(list_only: bool) -> None:
    """Enqueue periodic jobs on their schedule (run exactly one of these); it waits out a Redis outage."""
    jobs = periodic_jobs(current_app)
    for job in jobs:
        when = job.cron or f"every {job.interval}s"
        click.echo(f"{job.name}: {job.func.__module__}.{job.func.__name__} [{when}] -> {job.queue}")
    if list_only:
        return
    conn = _redis_or_exit()  # before touching the process's time zone
    from core.worker import ResilientScheduler

    # Cron strings use the process's local time: hospitals work on Beijing time.
    os.environ["TZ"] = current_app.config["SCHEDULER_TIMEZONE"]
    try:
        time.tzset()
    except AttributeError:  # pragma: no cover - not on Windows
        pass
    scheduler = ResilientScheduler(connection=conn)
    for job in jobs:
        scheduler.register(job.func, queue_name=job.queue, cron=job.cron, interval=job.interval,
                           kwargs=job.kwargs, name=job.name)
    scheduler.start()


def init_app(app: Flask) -> None:
    from core import devserver

    devserver.init_app(app)
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)
    register_periodic(app, heartbeat, name="heartbeat", interval=60)
