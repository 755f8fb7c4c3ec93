"""Password guessing is slowed down by growing delays, never by a lock a stranger can impose; real and unknown
usernames get the same answer in about the same time; the change-password page's current-password check is
slowed down the same way."""
from __future__ import annotations

import statistics
import time

import pytest

from core import backoff
from organisation.models import Role, StaffUser
from tests.factories import PASSWORD, login, make_staff

from .conftest import audit_entries, body, fresh

WRONG = "Wrong-password-2026"
BAD_CREDENTIALS = "用户名或密码不正确"
TOO_MANY = "登录尝试过于频繁"


@pytest.fixture
def staff(tenant_a) -> StaffUser:
    return make_staff([Role.COMPLAINT_OFFICER], tenant_a.institution)


@pytest.fixture
def clock(monkeypatch):
    """The back-off's clock, moved on by hand: ``clock.advance(seconds)``."""
    class Clock:
        now = time.time()

        def advance(self, seconds: float) -> None:
            self.now += seconds

    frozen = Clock()
    monkeypatch.setattr(backoff, "_clock", lambda: frozen.now)
    return frozen


def post_login(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password})


def signed_in(client, tenant) -> bool:
    response = client.get(f"/i/{tenant.id}/")
    return response.status_code == 200


def fail(client, username: str, times: int) -> None:
    for attempt in range(times):
        response = post_login(client, username, WRONG)
        assert response.status_code == 401 and BAD_CREDENTIALS in body(response), attempt


def test_failures_slow_the_username_down_with_growing_delays_and_never_lock_it(app, new_client, staff, tenant_a,
                                                                                clock):
    free, first = app.config["LOGIN_FREE_FAILURES"], app.config["LOGIN_FIRST_DELAY"]
    fail(new_client(), staff.username, free)
    response = post_login(new_client(), staff.username, PASSWORD)  # even the right password waits its turn
    assert response.status_code == 429 and response.headers["Retry-After"] == str(first)
    assert f"请在 {first} 秒后再试" in body(response)
    clock.advance(first + 1)
    fail(new_client(), staff.username, 1)
    assert post_login(new_client(), staff.username, WRONG).headers["Retry-After"] == str(2 * first)  # doubled
    clock.advance(2 * first + 1)
    fail(new_client(), staff.username, 1)
    assert post_login(new_client(), staff.username, WRONG).headers["Retry-After"] == str(4 * first)
    clock.advance(4 * first + 1)
    user_browser = new_client()
    assert post_login(user_browser, staff.username, PASSWORD).status_code == 302
    assert signed_in(user_browser, tenant_a)
    fail(new_client(), staff.username, free)  # the success started the count again from nothing


def test_the_wait_never_grows_past_the_maximum(app, new_client, staff, clock):
    fail(new_client(), staff.username, app.config["LOGIN_FREE_FAILURES"])
    for _ in range(12):
        wait = int(post_login(new_client(), staff.username, WRONG).headers["Retry-After"])
        clock.advance(wait + 1)
        assert post_login(new_client(), staff.username, WRONG).status_code == 401
    assert int(post_login(new_client(), staff.username, WRONG).headers["Retry-After"]) == app.config["LOGIN_MAX_DELAY"]


def test_real_and_unknown_usernames_get_the_same_answers(app, new_client, staff):
    answers = {}
    for username in (staff.username, "nobody-here-at-all"):
        client = new_client()
        seen = []
        for _ in range(app.config["LOGIN_FREE_FAILURES"] + 2):
            response = post_login(client, username, WRONG)
            page = body(response).replace(username, "<username>")
            seen.append((response.status_code, response.headers.get("Retry-After"),
                         BAD_CREDENTIALS in page, TOO_MANY in page))
        answers[username] = seen
    assert answers[staff.username] == answers["nobody-here-at-all"]
    assert answers[staff.username][-1][0] == 429


def _median_seconds(client, username: str, password: str, times: int = 5) -> float:
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        response = post_login(client, username, password)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 401
    return statistics.median(durations)


def test_real_inactive_and_unknown_usernames_answer_in_about_the_same_time(app, new_client, staff, tenant_a,
                                                                           monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_FREE_FAILURES", 1000)  # time the password check, not the delays
    inactive = make_staff([Role.COMPLAINT_OFFICER], tenant_a.institution)
    inactive.active = False
    post_login(new_client(), "warm-up-the-dummy-hash", WRONG)
    timings = {
        "real": _median_seconds(new_client(), staff.username, WRONG),
        "inactive": _median_seconds(new_client(), inactive.username, PASSWORD),
        "unknown": _median_seconds(new_client(), "nobody-here-at-all", WRONG),
    }
    assert max(timings.values()) < 2 * min(timings.values()), timings


def test_a_stranger_cannot_keep_the_user_out_of_a_browser_they_signed_in_on(app, new_client, staff, tenant_a):
    ward_pc = new_client()
    assert post_login(ward_pc, staff.username, PASSWORD).status_code == 302
    ward_pc.post("/logout")
    stranger = new_client()
    fail(stranger, staff.username, app.config["LOGIN_FREE_FAILURES"])
    for _ in range(5):
        assert post_login(stranger, staff.username, WRONG).status_code == 429
    assert post_login(ward_pc, staff.username, PASSWORD).status_code == 302
    assert signed_in(ward_pc, tenant_a)


def test_a_stranger_at_the_hospitals_shared_address_cannot_keep_a_known_browser_out(app, new_client, staff,
                                                                                      tenant_a, monkeypatch):
    """Behind the hospital's NAT every PC has one address: a stranger there spraying usernames and flooding the
    form slows the address down, but not a browser where the user signed in before."""
    monkeypatch.setitem(app.config, "LOGIN_FREE_FAILURES_PER_ADDRESS", 4)
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "6 per minute")
    ward_pc = new_client("10.20.0.1")
    assert post_login(ward_pc, staff.username, PASSWORD).status_code == 302
    ward_pc.post("/logout")
    answers = [post_login(new_client("10.20.0.1"), f"sprayed-{n}", WRONG).status_code for n in range(8)]
    assert 429 in answers  # the address is slowed down (by the delay, then by the request limit)
    assert post_login(new_client("10.20.0.1"), "another-stranger", WRONG).status_code == 429
    assert post_login(ward_pc, staff.username, PASSWORD).status_code == 302
    assert signed_in(ward_pc, tenant_a)


def test_a_known_browser_is_slowed_down_by_its_own_failures(app, new_client, staff):
    ward_pc = new_client()
    assert post_login(ward_pc, staff.username, PASSWORD).status_code == 302
    ward_pc.post("/logout")
    fail(ward_pc, staff.username, app.config["LOGIN_FREE_FAILURES"])
    assert post_login(ward_pc, staff.username, PASSWORD).status_code == 429


def test_a_forged_known_device_cookie_counts_as_a_new_browser(app, new_client, staff):
    stranger = new_client()
    fail(stranger, staff.username, app.config["LOGIN_FREE_FAILURES"])
    forger = new_client()
    forger.set_cookie("tj_known", "eyJkIjoiYWJjIiwidSI6W119.forged", domain=app.config["SERVER_NAME"])
    assert post_login(forger, staff.username, PASSWORD).status_code == 429


def test_an_admin_lifts_the_delay_and_the_lift_is_audited(app, admin_client, new_client, staff, tenant_a):
    fail(new_client(), staff.username, app.config["LOGIN_FREE_FAILURES"])
    assert "多次登录失败" in body(admin_client.get(f"/i/{tenant_a.id}/staff/{staff.id}/edit"))
    assert admin_client.post(f"/i/{tenant_a.id}/staff/{staff.id}/unlock").status_code == 302
    [entry] = audit_entries(action="staff.unlock", target_id=str(staff.id))
    assert entry.actor_id == tenant_a.role_user(Role.INSTITUTION_ADMIN).id
    user_browser = new_client()
    assert post_login(user_browser, staff.username, PASSWORD).status_code == 302
    assert "多次登录失败" not in body(admin_client.get(f"/i/{tenant_a.id}/staff/{staff.id}/edit"))


def test_one_address_trying_many_usernames_is_slowed_down(app, new_client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_FREE_FAILURES_PER_ADDRESS", 4)
    for n in range(4):
        assert post_login(new_client("10.99.1.5"), f"sprayed-{n}", WRONG).status_code == 401
    assert post_login(new_client("10.99.1.5"), "sprayed-next", WRONG).status_code == 429
    assert post_login(new_client("10.99.2.5"), "sprayed-next", WRONG).status_code == 401  # another address


def test_delays_hold_while_redis_is_away(app, new_client, staff, monkeypatch):
    import redis as redis_lib

    state = app.extensions["tingjian.ratelimit"]
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    monkeypatch.setitem(state, "redis", dead)
    monkeypatch.setitem(state, "script", None)
    monkeypatch.setitem(state, "down_until", 0.0)
    fail(new_client(), staff.username, app.config["LOGIN_FREE_FAILURES"])
    assert post_login(new_client(), staff.username, PASSWORD).status_code == 429


def test_the_current_password_check_is_slowed_down(app, client, staff, clock):
    login(client, staff)
    data = {"new_password": "Brand-new-2026x", "confirm": "Brand-new-2026x"}
    for _ in range(app.config["LOGIN_FREE_FAILURES"]):
        response = client.post("/account/password", data={**data, "current_password": WRONG})
        assert response.status_code == 400 and "当前密码不正确" in body(response)
    before = fresh(staff).password_hash
    response = client.post("/account/password", data={**data, "current_password": PASSWORD})
    assert response.status_code == 429 and "秒后再试" in body(response)
    assert fresh(staff).password_hash == before
    clock.advance(app.config["LOGIN_FIRST_DELAY"] + 1)
    assert client.post("/account/password", data={**data, "current_password": PASSWORD}).status_code == 302
