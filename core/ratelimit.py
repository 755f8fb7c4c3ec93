"""Fixed-window rate limits: one Redis round trip per request, counted in the process while Redis is away.

A view declares its limits with ``@limited(("CONFIG_KEY", key_function), ...)``:
each config value is a limit string such as "20 per minute" or
"10 per minute;60 per day", and each key function names who is counted (the
client's address, the patient's device cookie). All the counters of one
request are bumped by one Lua script, so two limits cost what one does; only
the listed methods are counted (POST by default), so viewing a page is never
limited. Over a limit, the view is not called and a 429 with Retry-After is
raised; the app's error pages (or a blueprint's own 429 handler) answer it.

Nothing runs on requests to unlimited views: no hook is installed.
"""
from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable

import redis as redis_lib
from flask import Flask, current_app, request
from limits import parse_many
from redis.exceptions import RedisError
from werkzeug.exceptions import TooManyRequests

Rule = tuple[str, Callable[[], str]]

# KEYS are counters, ARGV their window lengths; returns each counter after this hit.
_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  counts[i] = n
end
return counts
"""

_local: dict[str, tuple[int, int]] = {}
_lock = threading.Lock()
_swept_at = [0]
LOCAL_SWEEP_SIZE = 50_000  # sweep expired in-process counters past this many, at most once a second
LOCAL_MAX_SIZE = 200_000  # and forget them all past this many (a flood of new keys while Redis is away)
REDIS_RETRY_SECONDS = 5  # after Redis failed, count in the process this long before trying it again


def init_app(app: Flask) -> None:
    """Check every limit setting now (a typo must fail the start, not every POST) and connect the counters.

    The counters get their own Redis client with short timeouts: a Redis that
    hangs must cost a request half a second once, not block it.
    """
    for name, value in app.config.items():
        if name.endswith("_LIMIT") and isinstance(value, str):
            try:
                _parse(value)
            except ValueError as exc:
                raise RuntimeError(f"{name}: {exc} "
                                   "(write e.g. \"20 per minute\" or \"10 per minute;60 per day\")") from None
    if app.config.get("RATELIMIT_STORAGE_URI"):
        app.logger.warning("RATELIMIT_STORAGE_URI is no longer read: rate limits are counted in REDIS_URL")
    url = app.config.get("REDIS_URL")
    timeout = app.config.get("RATELIMIT_REDIS_TIMEOUT", 0.5)
    app.extensions["tingjian.ratelimit"] = {
        "redis": redis_lib.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout) if url else None,
        "script": None,
        "down_until": 0.0,
    }


def _clock() -> float:
    return time.time()


def client_address() -> str:
    """The client's address (behind a proxy, as ProxyFix reports it)."""
    return request.remote_addr or "-"


@functools.lru_cache(maxsize=64)
def _parse(limit_string: str) -> tuple[tuple[int, int], ...]:
    """(allowed, window seconds) for each limit in a string such as "10 per minute;60 per day"
    (limits separated by ";", "," or "|")."""
    return tuple((item.amount, item.get_expiry()) for item in parse_many(limit_string))


def _windows(limit_string: str, key: str, now: float) -> list[tuple[str, int, int]]:
    """(counter key, allowed, window seconds) for each limit in a limit string."""
    return [(f"tj:rl:{key}:{allowed}/{window}:{int(now // window)}", allowed, window)
            for allowed, window in _parse(limit_string)]


def retry_after(checks: list[tuple[str, str]]) -> int | None:
    """Count one hit for each (limit string, key); the seconds to wait when any is over its limit, else None."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return None
    now = _clock()
    windows = [w for limit_string, key in checks for w in _windows(limit_string, key, now)]
    counts = _count_in_redis(windows)
    if counts is None:
        counts = _count_locally(windows, now)
    waits = [math.ceil((now // window + 1) * window - now)
             for count, (_key, allowed, window) in zip(counts, windows, strict=True) if count > allowed]
    return max(1, *waits) if waits else None


def counter_redis() -> redis_lib.Redis | None:
    """The counters' Redis client (short timeouts), or None without Redis or for a few seconds after it failed."""
    state = current_app.extensions["tingjian.ratelimit"]
    if state["redis"] is None or time.monotonic() < state["down_until"]:
        return None
    return state["redis"]


def counters_failed() -> None:
    """Redis failed a counter's command: count in the process for a few seconds before trying it again."""
    current_app.extensions["tingjian.ratelimit"]["down_until"] = time.monotonic() + REDIS_RETRY_SECONDS
    current_app.logger.warning("rate-limit counters unavailable in Redis; counting in the process for %d s",
                               REDIS_RETRY_SECONDS)


def _count_in_redis(windows) -> list[int] | None:
    state = current_app.extensions["tingjian.ratelimit"]
    if counter_redis() is None:
        return None
    if state["script"] is None:
        state["script"] = state["redis"].register_script(_SCRIPT)
    try:
        return state["script"](keys=[w[0] for w in windows], args=[w[2] for w in windows])
    except RedisError:
        # Redis down or hanging must not turn a patient's rating or a login into an error.
        counters_failed()
        return None


def _count_locally(windows, now: float) -> list[int]:
    second = int(now)
    counts = []
    with _lock:
        for counter, _allowed, window in windows:
            count, expires = _local.get(counter, (0, second + window))
            if expires <= second:
                count, expires = 0, second + window
            _local[counter] = (count + 1, expires)
            counts.append(count + 1)
        if len(_local) > LOCAL_SWEEP_SIZE and second > _swept_at[0]:
            _swept_at[0] = second
            for stale in [k for k, (_n, e) in _local.items() if e <= second]:
                del _local[stale]
            if len(_local) > LOCAL_MAX_SIZE:
                _local.clear()
    return counts


def retry_after_header(error) -> str:
    """The Retry-After of a page answering a 429: the limiter's own wait, else a minute."""
    return str(getattr(error, "retry_after", None) or 60)


def reset_local() -> None:
    """Forget the in-process counters (tests)."""
    with _lock:
        _local.clear()


def limited(*rules: Rule, scope: str | None = None, methods: tuple[str, ...] = ("POST",)):
    """Limit a view: each rule is (config key holding the limit string, function naming who is counted).

    Counters are per ``scope`` (default: the view's name), so views that share
    a scope share their counts.
    """
    def decorate(view):
        name = scope or f"{view.__module__}.{view.__name__}"

        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if request.method in methods:
                config = current_app.config
                wait = retry_after([(config[setting], f"{name}:{setting}:{key()}") for setting, key in rules])
                if wait is not None:
                    raise TooManyRequests(retry_after=wait)
            return view(*args, **kwargs)

        return wrapper

    return decorate
