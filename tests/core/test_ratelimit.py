"""Rate limits (core/ratelimit.py): counted in Redis in one round trip, in the process while Redis is away."""
from __future__ import annotations

import pytest
import redis as redis_lib

from core import ratelimit
from core.ratelimit import client_address, limited

START = 1_800_000_000 - 1_800_000_000 % 86400 + 3600  # 01:00 UTC on some day: a minute window starts here


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for the fixed windows."""
    now = [float(START)]
    monkeypatch.setattr(ratelimit, "_clock", lambda: now[0])
    return now


@pytest.fixture
def limited_app(make_app, database_url, redis_url):
    return lambda **config: build(make_app, database_url, redis_url, **config)


def build(make_app, database_url, redis_url, **config):
    """A fresh app with test-only routes: two limits on one view, and two views sharing a scope."""
    from flask import jsonify

    config.setdefault("REDIS_URL", redis_url)
    config.setdefault("TIGHT_LIMIT", "2 per minute;3 per day")
    app = make_app(DATABASE_URL=database_url, LOOSE_LIMIT="100 per minute", **config)

    @app.route("/test/limited", methods=["GET", "POST"])
    @limited(("TIGHT_LIMIT", client_address), ("LOOSE_LIMIT", lambda: "everyone"))
    def one():
        return "ok"

    @app.post("/test/shared-a")
    @limited(("TIGHT_LIMIT", client_address), scope="shared")
    def shared_a():
        return "a"

    @app.post("/test/shared-b")
    @limited(("TIGHT_LIMIT", client_address), scope="shared")
    def shared_b():
        return "b"

    @app.post("/api/test/limited")
    @limited(("TIGHT_LIMIT", client_address))
    def api():
        return jsonify(ok=True)

    return app


def statuses(client, path, times, method="post"):
    return [getattr(client, method)(path).status_code for _ in range(times)]


def test_a_view_answers_429_past_its_limit_and_says_when_to_retry(limited_app, redis_url, clock):
    clock[0] = START + 45  # 15 seconds before this minute's window ends
    client = limited_app().test_client()

    assert statuses(client, "/test/limited", 2) == [200, 200]
    refused = client.post("/test/limited")

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "15"
    assert "操作过于频繁" in refused.get_data(as_text=True)


@pytest.mark.parametrize("tight", ["2 per minute;3 per day", "2/minute, 3/day"])
def test_each_limit_of_a_string_counts_over_its_own_window(limited_app, redis_url, clock, tight):
    client = limited_app(TIGHT_LIMIT=tight).test_client()
    assert statuses(client, "/test/limited", 2) == [200, 200]  # 2 per minute

    clock[0] += 60  # a new minute: the minute count starts again, the day count does not
    assert statuses(client, "/test/limited", 1) == [200]
    refused = client.post("/test/limited")  # the 4th of the day
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 3600  # only tomorrow helps


def test_viewing_a_limited_page_is_never_counted(limited_app, redis_url, clock):
    client = limited_app().test_client()

    assert statuses(client, "/test/limited", 5, method="get") == [200] * 5
    assert statuses(client, "/test/limited", 3) == [200, 200, 429]


def test_views_in_one_scope_share_their_counts_and_other_clients_have_their_own(limited_app, redis_url, clock):
    app = limited_app()
    client = app.test_client()
    neighbour = app.test_client()
    neighbour.environ_base["REMOTE_ADDR"] = "10.99.0.2"

    assert [client.post("/test/shared-a").status_code, client.post("/test/shared-b").status_code,
            client.post("/test/shared-a").status_code] == [200, 200, 429]
    assert client.post("/test/limited").status_code == 200  # another scope
    assert neighbour.post("/test/shared-b").status_code == 200


def test_two_limits_cost_one_redis_round_trip(limited_app, redis_url, clock):
    client = limited_app().test_client()
    conn = redis_lib.Redis.from_url(redis_url)
    client.post("/test/limited")  # loads the script once

    def script_calls() -> int:
        stats = conn.info("commandstats")
        return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))

    before = script_calls()
    client.post("/test/limited")
    assert script_calls() - before == 1
    own = f"tj:rl:{__name__}.one:*"  # keys are scoped by the view's module and name
    assert len(list(conn.scan_iter(own))) == 3  # tight per minute and per day, loose per minute
    assert all(0 < conn.ttl(key) <= 86400 for key in conn.scan_iter(own))


def test_with_redis_down_the_limits_are_counted_in_the_process(limited_app, clock):
    client = limited_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()

    assert statuses(client, "/test/limited", 3) == [200, 200, 429]


def test_without_redis_at_all_the_limits_are_counted_in_the_process(limited_app, redis_url, clock):
    client = limited_app(REDIS_URL=None).test_client()

    assert statuses(client, "/test/limited", 3) == [200, 200, 429]


def test_api_clients_get_a_json_429_with_retry_after(limited_app, redis_url, clock):
    client = limited_app().test_client()
    statuses(client, "/api/test/limited", 2)

    refused = client.post("/api/test/limited")

    assert refused.status_code == 429
    assert refused.is_json and refused.get_json()["error"]
    assert int(refused.headers["Retry-After"]) > 0


def test_limits_can_be_switched_off(limited_app, redis_url, clock):
    client = limited_app(RATELIMIT_ENABLED=False).test_client()

    assert statuses(client, "/test/limited", 5) == [200] * 5


def test_a_redis_that_hangs_costs_one_request_a_short_wait_then_the_process_counts(limited_app, clock):
    import socket
    import time

    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        client = limited_app(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                             RATELIMIT_REDIS_TIMEOUT=0.3).test_client()
        started = time.monotonic()
        assert statuses(client, "/test/limited", 3) == [200, 200, 429]
        assert time.monotonic() - started < 2  # one 0.3 s wait, then Redis is left alone for a while
    finally:
        silent.close()


def test_a_malformed_limit_setting_stops_the_app_at_start_and_names_it(make_app, database_url):
    with pytest.raises(RuntimeError, match="LOGIN_RATE_LIMIT"):
        make_app(DATABASE_URL=database_url, LOGIN_RATE_LIMIT="twenty a minute")
