"""Per-device and per-network limits for the patient POST, in one Redis round trip.

Flask-Limiter guards the staff login and the API. On the patient rating path
its two decorators (device and network) cost two script calls and about a
third of the request, so this module checks both fixed-window counters with
one pipelined INCR/EXPIRE per key, using the limit strings and the Redis that
Flask-Limiter uses. Without Redis (the embedded mode) the counters live in
the process.
"""
from __future__ import annotations

import threading
import time

from flask import current_app
from limits import parse
from redis.exceptions import RedisError

_local: dict[str, tuple[int, int]] = {}


def _clock() -> float:
    return time.time()
_lock = threading.Lock()


def _windows(limit_string: str, key: str) -> list[tuple[str, int, int]]:
    """(counter key, allowed, window seconds) for each limit in a Flask-Limiter style string."""
    out = []
    for part in filter(None, (p.strip() for p in limit_string.split(";"))):
        item = parse(part)
        window = item.get_expiry()
        bucket = int(_clock() // window)
        out.append((f"tj:rl:{key}:{item.amount}/{window}:{bucket}", item.amount, window))
    return out


def exceeded(checks: list[tuple[str, str]]) -> bool:
    """Count one hit for each (limit string, key); True when any counter is over its limit."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return False
    windows = [w for limit_string, key in checks for w in _windows(limit_string, key)]
    conn = current_app.extensions.get("redis")
    if conn is None:
        return _exceeded_locally(windows)
    pipe = conn.pipeline(transaction=False)
    for counter, _allowed, window in windows:
        pipe.incr(counter)
        pipe.expire(counter, window, nx=True)
    try:
        counts = pipe.execute()[::2]
    except RedisError:
        # Redis down must not cost a patient's rating: count in this process until it is back.
        current_app.logger.warning("rate-limit counters unavailable in Redis; counting in the process")
        return _exceeded_locally(windows)
    return any(count > allowed for count, (_c, allowed, _w) in zip(counts, windows))


def _exceeded_locally(windows) -> bool:
    now = int(_clock())
    over = False
    with _lock:
        for counter, allowed, window in windows:
            count, expires = _local.get(counter, (0, now + window))
            if expires <= now:
                count, expires = 0, now + window
            _local[counter] = (count + 1, expires)
            over |= count + 1 > allowed
        if len(_local) > 50000:
            for stale in [k for k, (_n, e) in _local.items() if e <= now]:
                del _local[stale]
    return over
