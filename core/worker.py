"""RQ worker and scheduler that run jobs inside an app context and ride out a Redis outage.

RQ's own loops give up on Redis too easily for a process that should run for months: its
``CronScheduler`` exits on the first failed round trip, and its worker quits when Redis goes
away anywhere but in the wait for the next job (while a job runs, say). ``run_scheduler`` and
``run_worker`` wait for Redis instead, with a growing pause, and say so once per outage. The
systemd units restart them as well (docs/deployment.md): this is what spares the restart.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from flask import Flask
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Worker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

log = logging.getLogger(__name__)

# What a lost or restarting Redis raises (a server loading its data raises BusyLoadingError, a ConnectionError).
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)

_app: Flask | None = None


def get_app() -> Flask:
    global _app
    if _app is None:
        from core import create_app

        _app = create_app()
    return _app


def use_app(app: Flask) -> None:
    """Let ``flask worker`` hand over the app it already built."""
    global _app
    _app = app


class Outage:
    """A process's view of one Redis outage: the pause before the next attempt, and one log line at each end."""

    def __init__(self, process: str, *, first: float = 1.0, longest: float = 30.0):
        self.process, self.first, self.longest = process, first, longest
        self.delay = first
        self.since: float | None = None

    def failed(self, error: Exception) -> float:
        """Note a failed attempt; the seconds to wait before the next one (doubling up to ``longest``)."""
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s: Redis unreachable (%s); retrying every %g to %g s until it returns",
                        self.process, error, self.first, self.longest)
        delay, self.delay = self.delay, min(self.delay * 2, self.longest)
        return delay

    def recovered(self) -> None:
        if self.since is not None:
            log.warning("%s: Redis is back after %.0f s", self.process, time.monotonic() - self.since)
            self.since, self.delay = None, self.first


class FlaskWorker(Worker):
    """Pushes an app context around every job; a fresh session per job. When idle, runs the watchdogs."""

    max_connection_wait_time = 30.0  # RQ's own pause while waiting for a job, as Outage's longest

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stop_requested = False
        get_app()

    def request_stop(self, signum, frame):
        self.stop_requested = True  # SIGTERM or SIGINT: the loop ended because it was asked to
        super().request_stop(signum, frame)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """Wait for a job as RQ does, but after each WORKER_WATCHDOG_SECONDS without one, run the watchdogs."""
        from core.tasks import watchdogs

        app = get_app()
        if timeout is None or max_idle_time is not None or not watchdogs(app):  # burst mode, or the caller's limit
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        while True:
            result = super().dequeue_job_and_maintain_ttl(timeout, int(app.config["WORKER_WATCHDOG_SECONDS"]))
            if result is not None:
                return result
            self.run_watchdogs()

    def run_watchdogs(self) -> None:
        from core.extensions import db
        from core.tasks import watchdogs

        app = get_app()
        with app.app_context():
            for name, func in watchdogs(app):
                try:
                    func()
                except Exception:  # the next idle spell tries again; a job must not wait for a broken check
                    log.exception("watchdog %s failed", name)
                    db.session.rollback()

    def perform_job(self, job, queue, *args, **kwargs):
        app = get_app()
        with app.app_context():
            if getattr(self, "_is_horse", False):
                from core.extensions import db

                db.engine.dispose(close=False)  # never share pooled sockets across fork
            return super().perform_job(job, queue, *args, **kwargs)


def wait_for_redis(connection: Redis, outage: Outage, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once Redis answers a PING, trying again after each of ``outage``'s pauses."""
    while True:
        try:
            connection.ping()
        except REDIS_DOWN as error:
            sleep(outage.failed(error))
            continue
        outage.recovered()
        return


def run_worker(queues: Sequence[str], connection: Redis, *, burst: bool = False, with_scheduler: bool = False) -> None:
    """Work the queues until asked to stop; when RQ's loop quits on a lost Redis, wait for it and start again."""
    outage = Outage("worker")
    while True:
        worker = FlaskWorker(list(queues), connection=connection)
        try:
            worker.work(burst=burst, with_scheduler=with_scheduler)
        except REDIS_DOWN as error:  # the loop's teardown could not reach Redis either
            outage.failed(error)
        except StopRequested:  # a signal while RQ tidied up
            return
        if burst or worker.stop_requested:
            return
        # RQ quit without being asked (it logged why): Redis went away while a job ran or a heartbeat was sent.
        try:
            wait_for_redis(connection, outage)
        except StopRequested:  # the worker's signal handlers are still installed
            return


class ResilientScheduler(CronScheduler):
    """RQ's CronScheduler whose loop waits for Redis instead of exiting when it goes away.

    A job that fell due during the outage is queued once when Redis returns (not once per missed
    tick); a job whose queueing failed half-way is queued again at the next attempt.
    """

    def start(self) -> None:
        self.log.info("CronScheduler %s: starting...", self.name)
        self._install_signal_handlers()
        outage = Outage("scheduler")
        born = False
        try:
            while True:
                try:
                    if not born:
                        self.register_birth()
                        born = True
                    if self.enqueue_jobs():
                        self.save()
                    self.heartbeat()
                except REDIS_DOWN as error:
                    time.sleep(outage.failed(error))
                    continue
                outage.recovered()
                pause = self.calculate_sleep_interval()
                if pause > 0:
                    time.sleep(pause)
        except (KeyboardInterrupt, StopRequested):
            self.log.info("CronScheduler %s: stop requested", self.name)
        finally:
            if born:
                try:
                    self.register_death()
                except REDIS_DOWN:
                    pass  # Redis is away: the registry entry expires by itself
            self.log.info("CronScheduler %s: shutdown complete", self.name)
