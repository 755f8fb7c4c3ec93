"""Growing delays after repeated failures (exponential back-off), never a lock.

A key (one username, one client address) may fail ``free`` times in a row at no cost. Each
failure after that makes the next try wait twice as long as the last: ``first``, 2·``first``,
4·``first``… up to ``cap`` seconds. A try during the wait is refused without being looked at,
so a guesser gets at most one guess per wait, while the person who owns the key waits at most
``cap`` seconds. A success clears the key (``clear``); a key that has not failed for ``forget``
seconds starts again from nothing.

State lives in Redis (REDIS_URL, the rate-limit counters' client, core.ratelimit) so that every
web process sees the same counts; while Redis is away, or without it, each process counts alone.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from core import ratelimit

PREFIX = "tj:rl:bo:"  # under the rate limits' prefix: cleared with them

# KEYS: the keys that failed; ARGV: now, then each key's forget time. Returns nothing. A key quiet for its forget
# time starts again here too, judged by the callers' clock (the same one that judges the waits), not only when
# Redis's own expiry removes it.
_FAIL = """
for i, key in ipairs(KEYS) do
  local last = tonumber(redis.call('HGET', key, 'last') or '0')
  if last > 0 and tonumber(ARGV[1]) - last >= tonumber(ARGV[i + 1]) then
    redis.call('DEL', key)
  end
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'last', ARGV[1])
  redis.call('EXPIRE', key, ARGV[i + 1])
end
return 0
"""

_local: dict[str, tuple[int, float]] = {}
_lock = threading.Lock()
LOCAL_MAX_SIZE = 100_000  # forget the in-process state past this many keys (a flood while Redis is away)


@dataclass(frozen=True)
class Policy:
    free: int          # failures in a row that cost nothing
    first: float       # the wait after the first failure past ``free``, in seconds; doubled by each further one
    cap: float         # the longest wait, in seconds
    forget: int        # seconds without a failure after which the key starts again from nothing

    def delay(self, failures: int) -> float:
        """The wait that ``failures`` failures in a row impose on the next try."""
        if failures < self.free:
            return 0.0
        return min(self.cap, self.first * 2 ** min(failures - self.free, 32))


def _clock() -> float:
    return time.time()


def _read(keys: list[str]) -> list[tuple[int, float]]:
    conn = ratelimit.counter_redis()
    if conn is not None:
        try:
            pipe = conn.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(PREFIX + key, ["n", "last"])
            return [(int(n or 0), float(last or 0)) for n, last in pipe.execute()]
        except RedisError:
            ratelimit.counters_failed()
    with _lock:
        return [_local.get(key, (0, 0.0)) for key in keys]


def wait_seconds(checks: list[tuple[Policy, str]]) -> int:
    """Whole seconds to wait before the next try, the longest over (policy, key) pairs; 0: try now."""
    if not checks:
        return 0
    now = _clock()
    waits = []
    for (policy, _key), (failures, last) in zip(checks, _read([key for _policy, key in checks]), strict=True):
        if last and now - last >= policy.forget:
            continue  # forgotten: quiet for ``forget`` seconds (Redis lets the key expire then too)
        waits.append(last + policy.delay(failures) - now)
    longest = max(waits, default=0.0)
    return math.ceil(longest) if longest > 0 else 0


def record_failure(checks: list[tuple[Policy, str]]) -> None:
    """Count one failure for each (policy, key)."""
    if not checks:
        return
    now = _clock()
    conn = ratelimit.counter_redis()
    if conn is not None:
        try:
            conn.eval(_FAIL, len(checks), *(PREFIX + key for _policy, key in checks), now,
                      *(policy.forget for policy, _key in checks))
            return
        except RedisError:
            ratelimit.counters_failed()
    with _lock:
        if len(_local) > LOCAL_MAX_SIZE:
            _local.clear()
        for policy, key in checks:
            failures, last = _local.get(key, (0, 0.0))
            if last and now - last >= policy.forget:
                failures = 0
            _local[key] = (failures + 1, now)


def clear(*keys: str) -> None:
    """Forget the failures of these keys (a success, or an administrator lifting the delays)."""
    if not keys:
        return
    conn = ratelimit.counter_redis()
    if conn is not None:
        try:
            conn.delete(*(PREFIX + key for key in keys))
        except RedisError:
            ratelimit.counters_failed()
    with _lock:
        for key in keys:
            _local.pop(key, None)


def reset_local() -> None:
    """Forget the in-process state (tests)."""
    with _lock:
        _local.clear()
