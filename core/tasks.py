"""The job seam: RQ when Redis is configured, inline otherwise.

Jobs are plain functions that take ids. ``enqueue`` runs them on an RQ worker
when ``REDIS_URL`` is set and inline in the caller's app context otherwise,
so the embedded mode needs no service. Queue names live here, in one place.
"""
from __future__ import annotations

import contextvars
import logging
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from sqlalchemy import event
from sqlalchemy.orm import Session

from core.db import utcnow
from core.extensions import db

QUEUE_HIGH = "high"
QUEUE_DEFAULT = "default"
QUEUE_LOW = "low"
QUEUES = (QUEUE_HIGH, QUEUE_DEFAULT, QUEUE_LOW)

_inline_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("inline_job_id", default=None)


def current_job_id() -> str | None:
    """The id of the job running now (RQ or inline), or None outside a job."""
    inline = _inline_job_id.get()
    if inline:
        return inline
    job = get_current_job()
    return job.id if job else None


class JobLogAdapter(logging.LoggerAdapter):
    """Stamps every line with the current job id."""

    def process(self, msg, kwargs):
        return f"[job {current_job_id() or '-'}] {msg}", kwargs


def job_logger(name: str) -> JobLogAdapter:
    return JobLogAdapter(logging.getLogger(name), {})


@dataclass
class InlineResult:
    """What enqueue() returns in inline mode, shaped like the RQ job fields we use."""

    id: str
    result: Any = None
    exc_info: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.exc_info is None

    @property
    def is_failed(self) -> bool:
        return self.exc_info is not None


def _queue_connection():
    """The Redis connection jobs go to, or None when they run inline (embedded mode, JOBS_INLINE)."""
    conn = current_app.extensions.get("redis")
    return None if current_app.config.get("JOBS_INLINE") else conn


def enqueue(func: Callable[..., Any], *args: Any, queue: str = QUEUE_DEFAULT, **kwargs: Any):
    """Run ``func(*args, **kwargs)`` as a job; call it after the commit it depends on."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    conn = _queue_connection()
    if conn is not None:
        try:
            return Queue(queue, connection=conn).enqueue(func, *args, **kwargs)
        except RedisError:
            # The change this job follows is committed already: with Redis down,
            # do the work now rather than lose it or show the user an error.
            job_logger(__name__).warning("Redis unavailable: running %s inline",
                                         getattr(func, "__name__", func))
    return run_inline(func, *args, **kwargs)


def job_now(now: str | datetime | None) -> datetime:
    """The moment a job acts as: now, or the moment its caller passed (an ISO string when queued: RQ pickles
    arguments, and a test or a re-run names the moment it replays)."""
    if now is None:
        return utcnow()
    return now if isinstance(now, datetime) else datetime.fromisoformat(now)


def try_enqueue(func: Callable[..., Any], *args: Any, queue: str = QUEUE_DEFAULT, **kwargs: Any):
    """``enqueue`` for a job that a periodic sweep re-drives: never raises, logs and returns None.

    Call it after the commit a user was told about (a case registered, an alert raised): a queue
    that cannot be reached must not turn "received" into an error page; the sweep sends it later.
    """
    try:
        return enqueue(func, *args, queue=queue, **kwargs)
    except Exception:
        job_logger(__name__).exception("could not queue %s; its sweep will", getattr(func, "__name__", func))
        return None


def run_inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> InlineResult:
    """Run a job in this process and app context, stamped with an inline job id; never raises.

    Then run the jobs it queued with ``enqueue_after_commit`` whose transaction committed.
    """
    job = InlineResult(id=f"inline-{uuid.uuid4().hex[:12]}")
    token = _inline_job_id.set(job.id)
    log = job_logger(__name__)
    try:
        job.result = func(*args, **kwargs)
    except Exception:  # an inline job must not break the request that queued it

        job.exc_info = traceback.format_exc()
        log.exception("inline job %s failed", getattr(func, "__name__", func))
    finally:
        _inline_job_id.reset(token)
    run_committed_jobs()
    return job


# Jobs that wait for a commit -------------------------------------------------------------------

_PENDING = "tingjian_after_commit"      # queued in the open transaction
_COMMITTED = "tingjian_committed_jobs"  # their transaction committed; to run inline


@dataclass
class _Deferred:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    queue: str


def enqueue_after_commit(func: Callable[..., Any], *args: Any, queue: str = QUEUE_DEFAULT) -> None:
    """Queue ``func(*args)`` for when the current transaction commits; nothing happens if it rolls back.

    For code deep inside a job or service that cannot know when its caller commits (a notice's outbound
    delivery). With Redis the job is queued the moment the commit succeeds; inline (embedded mode, tests)
    it runs when the enclosing inline job returns, or at ``run_committed_jobs``. A job queued this way
    must be re-driven by a sweep: Redis may be away at that moment.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    session = db.session()
    if not session.in_transaction():  # a transaction to wait for, whose rollback drops the job
        session.begin()
    session.info.setdefault(_PENDING, []).append(_Deferred(func, args, queue))


def run_committed_jobs() -> int:
    """Run, inline, the jobs whose transaction committed (``enqueue_after_commit`` without Redis)."""
    ran = 0
    session = db.session()
    while session.info.get(_COMMITTED):
        deferred: _Deferred = session.info[_COMMITTED].pop(0)
        run_inline(deferred.func, *deferred.args)
        ran += 1
    return ran


def _after_commit(session: Session) -> None:
    pending: list[_Deferred] = session.info.pop(_PENDING, [])
    if not pending:
        return
    conn = _queue_connection()
    for deferred in pending:
        if conn is not None:
            try:  # no SQL here: the session is between transactions
                Queue(deferred.queue, connection=conn).enqueue(deferred.func, *deferred.args)
                continue
            except RedisError:
                job_logger(__name__).warning("Redis unavailable: %s waits for its sweep",
                                             getattr(deferred.func, "__name__", deferred.func))
                continue
        session.info.setdefault(_COMMITTED, []).append(deferred)


def _after_soft_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint inside it
        session.info.pop(_PENDING, None)


def init_app(app: Flask) -> None:
    """Watch the session's commits for ``enqueue_after_commit`` (once: the scoped session is shared by apps)."""
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_soft_rollback", _after_soft_rollback)


@dataclass
class PeriodicJob:
    func: Callable[..., Any]
    name: str
    cron: str | None = None
    interval: int | None = None
    queue: str = QUEUE_LOW
    kwargs: dict[str, Any] = field(default_factory=dict)


def register_periodic(app: Flask, func: Callable[..., Any], *, name: str, cron: str | None = None,
                      interval: int | None = None, queue: str = QUEUE_LOW) -> None:
    """Declare a periodic job; ``flask scheduler`` enqueues it, workers run it."""
    if (cron is None) == (interval is None):
        raise ValueError("give exactly one of cron or interval")
    app.extensions.setdefault("periodic_jobs", []).append(
        PeriodicJob(func=func, name=name, cron=cron, interval=interval, queue=queue)
    )


def periodic_jobs(app: Flask) -> list[PeriodicJob]:
    return list(app.extensions.get("periodic_jobs", []))


def register_watchdog(app: Flask, func: Callable[[], Any], *, name: str) -> None:
    """Declare a check that every idle worker runs itself (every WORKER_WATCHDOG_SECONDS of idleness), so that
    work the scheduler queues is done even when the scheduler is gone. It must cost next to nothing when all is
    well, and commit what it does."""
    app.extensions.setdefault("watchdogs", []).append((name, func))


def watchdogs(app: Flask) -> list[tuple[str, Callable[[], Any]]]:
    return list(app.extensions.get("watchdogs", []))


HEARTBEAT_KEY = "tingjian:scheduler:heartbeat"


def heartbeat() -> str:
    """Periodic no-op that proves scheduler and worker run; /healthz reads its time."""

    stamp = utcnow().isoformat()
    conn = current_app.extensions.get("redis")
    if conn is not None:
        conn.set(HEARTBEAT_KEY, stamp, ex=3600)
    job_logger(__name__).info("heartbeat %s", stamp)
    return stamp
