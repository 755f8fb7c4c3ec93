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


def tick() -> str:
    """A periodic job for the scheduler's outage test: it only has to be queued."""
    return "tick"


def touch(path: str, seconds: float = 0.0) -> str:
    """Writes ``path`` + ".started", waits ``seconds``, then writes ``path``: a worker's proof that it ran."""
    import time
    from pathlib import Path

    Path(path + ".started").write_text("started")
    time.sleep(seconds)
    Path(path).write_text("done")
    return path


def watched() -> None:
    """A watchdog for the worker's test: writes the file named by TINGJIAN_TEST_WATCHDOG_FILE each time it runs."""
    import os
    from pathlib import Path

    with Path(os.environ["TINGJIAN_TEST_WATCHDOG_FILE"]).open("a") as out:
        out.write("ran\n")


def outage_app():
    """The app `flask worker` and `flask scheduler` load in these tests (FLASK_APP=tests.core.jobs:outage_app),
    configured by the environment, with a periodic job every second and a watchdog."""
    from core import create_app
    from core.tasks import QUEUE_DEFAULT, register_periodic, register_watchdog

    app = create_app()
    register_periodic(app, tick, name="tick", interval=1, queue=QUEUE_DEFAULT)
    register_watchdog(app, watched, name="watched")
    return app
