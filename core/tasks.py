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
from typing import Any

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import Queue, get_current_job

from core.db import utcnow

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


def enqueue(func: Callable[..., Any], *args: Any, queue: str = QUEUE_DEFAULT, **kwargs: Any):
    """Run ``func(*args, **kwargs)`` as a job; call it after the commit it depends on."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    conn = current_app.extensions.get("redis")
    if conn is not None and not current_app.config.get("JOBS_INLINE"):
        try:
            return Queue(queue, connection=conn).enqueue(func, *args, **kwargs)
        except RedisError:
            # The change this job follows is committed already: with Redis down,
            # do the work now rather than lose it or show the user an error.
            job_logger(__name__).warning("Redis unavailable: running %s inline",
                                         getattr(func, "__name__", func))
    return run_inline(func, *args, **kwargs)


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
    """Run a job in this process and app context, stamped with an inline job id; never raises."""
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
    return job


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


HEARTBEAT_KEY = "tingjian:scheduler:heartbeat"


def heartbeat() -> str:
    """Periodic no-op that proves scheduler and worker run; /healthz reads its time."""

    stamp = utcnow().isoformat()
    conn = current_app.extensions.get("redis")
    if conn is not None:
        conn.set(HEARTBEAT_KEY, stamp, ex=3600)
    job_logger(__name__).info("heartbeat %s", stamp)
    return stamp
