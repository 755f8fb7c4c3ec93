"""A Redis outage never costs a patient's rating (design.md, "Failure and bad input")."""
from __future__ import annotations

import pytest
import redis as redis_lib

from .conftest import stored, submission_id_of, submit

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_down(app):
    """The app's Redis connection points at a port where nothing listens, for this test only."""
    live = app.extensions["redis"]
    app.extensions["redis"] = redis_lib.Redis.from_url(DEAD_REDIS, socket_connect_timeout=0.2)
    yield
    app.extensions["redis"] = live


def test_a_qr_rating_is_stored_while_redis_is_down(client, window_code, redis_down):
    posted = submit(client, window_code, WIN_OVERALL="4")

    assert posted.status_code == 303
    assert stored(submission_id_of(posted)) is not None
