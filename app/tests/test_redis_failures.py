"""Redis failing: odd answers never kept, one store call per key, held keys answered stale."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from prometheus_client import REGISTRY
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoPermissionError,
    ReadOnlyError,
    ResponseError,
)

from cache_app import config, create_app
from cache_app.flights import Flights
from cache_app.near_cache import NearCache, redis_unusable
from conftest import wait_for

DB, CACHE = "database (slow)", "cache"


def near(app) -> NearCache:
    return app.extensions["cache_app"].near


def warm(app, key: str) -> None:
    """A miss (stored in Redis), then a hit read from Redis, which fills the local copy."""
    client = app.test_client()
    assert client.get(f"/data/{key}").headers["X-Cache"] == "MISS"
    assert wait_for(lambda: near(app).live, timeout=5), "the invalidation listener never started"
    assert client.get(f"/data/{key}").get_json()["source"] == CACHE


def lose_redis(app, server) -> None:
    server.stop()
    assert wait_for(lambda: not near(app).live, timeout=3), "the listener did not notice"


def stale_answers() -> float:
    return REGISTRY.get_sample_value("cache_app_stale_answers_total") or 0.0


@pytest.fixture
def app(settings, store):
    app = create_app(dataclasses.replace(settings, redis_timeout=0.5), store=store)
    yield app
    near(app).close()


@pytest.mark.parametrize("local_cache_size", [10000, 0], ids=["local copy on", "local copy off"])
def test_a_key_of_another_type_is_answered_from_the_store_every_time(
    settings, store, redis_server, local_cache_size
):
    """An admin HSETs a name under the app's prefix: WRONGTYPE is a bypass, never a 500."""
    redis_server.client().hset("typed", "field", "value")
    app = create_app(dataclasses.replace(settings, local_cache_size=local_cache_size), store=store)
    client = app.test_client()
    if local_cache_size:
        assert wait_for(lambda: near(app).live, timeout=5)
    for _ in range(3):
        answer = client.get("/data/typed")
        assert answer.status_code == 200
        assert answer.get_json() == {"key": "typed", "value": "TYPED", "source": DB}
        assert answer.headers["X-Cache"] == "BYPASS"


@pytest.mark.parametrize(
    ("get", "pttl"),
    [
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), 60000),
        (b"BYTES", 60000),
        ("FROM REDIS", None),
        ("FROM REDIS", b"60000"),
        ("FROM REDIS", ResponseError("NOPERM no permissions to run the 'pttl' command")),
        ("FROM REDIS", -2),
    ],
    ids=["GET error", "GET bytes", "PTTL None", "PTTL bytes", "PTTL error", "PTTL no key"],
)
def test_only_a_string_from_get_with_its_ttl_is_kept(
    app, store, redis_server, monkeypatch, get, pttl
):
    """Whatever the copy's GET and PTTL answer, the request gets JSON and nothing odd is kept:
    the next request answers what Redis holds."""
    redis_server.client().set("odd", "REAL", ex=60)
    assert wait_for(lambda: near(app).live, timeout=5)
    execute = redis.client.Pipeline.execute

    def odd_answers(self, *args, **kwargs):
        if [command[0][0] for command in self.command_stack] == ["GET", "PTTL"]:
            execute(self, *args, **kwargs)
            return [get, pttl]
        return execute(self, *args, **kwargs)

    client = app.test_client()
    with monkeypatch.context() as patch:
        patch.setattr(redis.client.Pipeline, "execute", odd_answers)
        answer = client.get("/data/odd")
        assert answer.status_code == 200
        if isinstance(get, str):
            assert (answer.get_json()["value"], answer.headers["X-Cache"]) == ("FROM REDIS", "HIT")
        else:
            assert (answer.get_json()["value"], answer.headers["X-Cache"]) == ("ODD", "BYPASS")
    for _ in range(2):
        answer = client.get("/data/odd")
        assert answer.status_code == 200
        assert (answer.get_json()["value"], answer.headers["X-Cache"]) == ("REAL", "HIT")


@pytest.mark.parametrize("local_cache_size", [10000, 0], ids=["local copy on", "local copy off"])
def test_while_redis_is_down_requests_for_a_key_share_one_store_call(
    settings, store, redis_server, local_cache_size
):
    store.delay = 0.5
    app = create_app(dataclasses.replace(settings, local_cache_size=local_cache_size), store=store)
    redis_server.stop()

    def fetch(key: str) -> tuple[int, str, str]:
        answer = app.test_client().get(f"/data/{key}")
        return answer.status_code, answer.get_json()["value"], answer.headers["X-Cache"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert list(pool.map(fetch, ["down"] * 20)) == [(200, "DOWN", "BYPASS")] * 20
    assert store.calls == 1
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(fetch, ["left", "right"] * 10))
    assert answers == [(200, "LEFT", "BYPASS"), (200, "RIGHT", "BYPASS")] * 10
    assert store.calls == 3
    assert fetch("down") == (200, "DOWN", "BYPASS")  # that flight is over: a new load
    assert store.calls == 4


def test_a_failed_load_reaches_every_caller_of_its_flight():
    flights: Flights[str] = Flights()
    started, release, calls = threading.Event(), threading.Event(), []

    def failing() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        raise RuntimeError("store down")

    def call(_: int) -> str:
        try:
            return flights.run("key", failing)
        except RuntimeError as error:
            return str(error)

    with ThreadPoolExecutor(max_workers=5) as pool:
        first = pool.submit(call, 0)
        assert started.wait(5)
        others = [pool.submit(call, n) for n in range(1, 5)]
        wait_for(lambda: False, timeout=0.2)  # the others are waiting on the first load
        release.set()
        assert [f.result() for f in [first, *others]] == ["store down"] * 5
    assert len(calls) == 1
    assert flights.run("key", lambda: "loaded") == "loaded"


def test_held_keys_are_answered_stale_and_fast_while_redis_is_down(app, store, redis_server):
    warm(app, "held")
    counted = stale_answers()
    lose_redis(app, redis_server)
    client = app.test_client()
    for n in range(10):
        started = time.monotonic()
        answer = client.get("/data/held")
        took = time.monotonic() - started
        assert answer.status_code == 200
        assert answer.get_json() == {"key": "held", "value": "HELD", "source": CACHE}
        assert answer.headers["X-Cache"] == "STALE"
        assert n == 0 or took < 0.2, f"answer {n} took {took:.2f} s"
    assert stale_answers() == counted + 10
    never = client.get("/data/never")
    assert never.get_json() == {"key": "never", "value": "NEVER", "source": DB}
    assert never.headers["X-Cache"] == "BYPASS"
    assert store.calls == 2


def test_a_frozen_redis_costs_held_keys_no_timeout_each(app, redis_server):
    """SIGSTOP: every call to Redis waits the 0.5 s timeout. Held keys are answered without
    asking it, but for one probe per back-off (about a second)."""
    warm(app, "frozen")
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        assert wait_for(lambda: not near(app).live, timeout=3)
        client = app.test_client()
        durations = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            started = time.monotonic()
            answer = client.get("/data/frozen")
            durations.append(time.monotonic() - started)
            assert answer.status_code == 200
            assert answer.get_json() == {"key": "frozen", "value": "FROZEN", "source": CACHE}
            assert answer.headers["X-Cache"] == "STALE"
            time.sleep(0.02)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    slow = [took for took in durations if took > 0.25]
    assert len(durations) >= 20
    assert len(slow) <= 3, f"{len(slow)} of {len(durations)} answers waited for Redis"


def test_stale_answers_end_at_the_keys_ttl_in_redis(app, store, redis_server):
    warm(app, "brief")
    # Long enough that reading it back, stopping Redis and the listener noticing (up to 1 s and
    # 3 s below) end before it does, on a loaded machine too.
    redis_server.client().set("brief", "SHORT", px=6000)
    expires = time.monotonic() + 6.0
    client = app.test_client()
    # The report drops the copy; the next read from Redis fills it with the new value and TTL.
    assert wait_for(lambda: client.get("/data/brief").get_json()["value"] == "SHORT", timeout=1)
    lose_redis(app, redis_server)
    assert client.get("/data/brief").headers["X-Cache"] == "STALE"
    wait_for(lambda: False, timeout=expires + 0.2 - time.monotonic())
    answer = client.get("/data/brief")
    assert answer.get_json() == {"key": "brief", "value": "BRIEF", "source": DB}
    assert answer.headers["X-Cache"] == "BYPASS"


def test_with_serve_stale_off_held_keys_go_to_the_store(settings, store, redis_server):
    assert config.from_env({"CACHE_APP_SERVE_STALE": "false"}).serve_stale is False
    assert config.from_env({"CACHE_APP_SERVE_STALE": "True"}).serve_stale is True
    assert config.from_env({}).serve_stale is True
    app = create_app(dataclasses.replace(settings, serve_stale=False), store=store)
    try:
        warm(app, "unheld")
        counted = stale_answers()
        lose_redis(app, redis_server)
        for _ in range(3):
            answer = app.test_client().get("/data/unheld")
            assert answer.get_json() == {"key": "unheld", "value": "UNHELD", "source": DB}
            assert answer.headers["X-Cache"] == "BYPASS"
        assert stale_answers() == counted
    finally:
        near(app).close()


def test_once_redis_reports_again_a_key_changed_meanwhile_is_answered_new(
    settings, store, redis_server
):
    """The copy held MOVED while Redis was down; Redis comes back with NEWER, set before the
    listener is back (no report for it). A held entry must not come back as a fresh hit, even
    within the copy's freshness bound (30 s here)."""
    app = create_app(dataclasses.replace(settings, local_cache_ttl=30), store=store)
    try:
        warm(app, "moved")
        lose_redis(app, redis_server)
        client = app.test_client()
        assert client.get("/data/moved").headers["X-Cache"] == "STALE"
        redis_server.start()
        redis_server.client().set("moved", "NEWER", ex=60)
        assert wait_for(lambda: near(app).live, timeout=5), "the listener did not come back"
        for _ in range(3):
            answer = client.get("/data/moved")
            assert answer.get_json() == {"key": "moved", "value": "NEWER", "source": CACHE}
            assert answer.headers["X-Cache"] == "HIT"
    finally:
        near(app).close()


@pytest.mark.parametrize(
    ("error", "unusable"),
    [
        (redis.ConnectionError("Connection refused"), True),
        (redis.TimeoutError("Timeout reading from socket"), True),
        (BusyLoadingError("Redis is loading the dataset in memory"), True),
        (AuthenticationError("invalid username-password pair"), False),
        (NoPermissionError("this user has no permissions to access one of the keys"), False),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
        (ReadOnlyError("You can't write against a read only replica."), False),
    ],
)
def test_only_a_redis_nobody_can_change_opens_stale_answers(error, unusable):
    """Unreachable, silent or loading: no client can change a key there. A refusal answers for
    one key or one client, while others may be writing."""
    assert redis_unusable(error) is unusable
