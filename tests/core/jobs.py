"""Job functions for the task tests; importable by path, as RQ needs."""
from __future__ import annotations

from core.extensions import db
from core.tasks import current_job_id, enqueue_after_commit, job_logger
from organisation.models import Region

log = job_logger(__name__)


def echo(value):
    log.info("working on %s", value)
    return value


def region_name(region_id: int) -> str | None:
    """Reads through the app's session, so it needs the app context the worker pushes."""
    region = db.session.get(Region, region_id)
    log.info("read region %s", region_id)
    return region.name if region else None


def own_job_id() -> str | None:
    return current_job_id()


def fail(message: str):
    raise RuntimeError(message)



RAN: list = []


def remember(value):
    """Records that it ran (enqueue_after_commit's tests)."""
    RAN.append(value)
    return value


def remember_after_commit(value):
    """A job that queues another for when its own transaction commits, then commits."""
    enqueue_after_commit(remember, value)
    db.session.commit()
    return value
