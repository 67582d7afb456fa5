"""Single flight: one store call per cold key, however many ask at once, even when its loader is
slow or dies; the lock needs FCALL of the cache_app function library only, no EVAL."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from flask import Flask
from prometheus_client import REGISTRY

from cache_app import config, create_app
from conftest import CountingStore, RedisServer, with_app_user

# Short timings, as a deployment would scale them down: renewed every 0.2 s, a waiter takes over
# after 0.5 s without a renewal; a lock left alone lives 10 s.
QUICK = {"lock_ttl": 10.0, "lock_renew_interval": 0.2, "lock_wait": 0.5, "lock_wait_max": 10.0}


@pytest.fixture
def make_app(settings: config.Settings, store: CountingStore) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(base: config.Settings = settings, **changes: object) -> Flask:
        app = create_app(dataclasses.replace(base, **changes), store=store)
        apps.append(app)
        return app

    yield make
    for app in apps:
        if (near := app.extensions["cache_app"].near) is not None:
            near.close()


def concurrently(app: Flask, key: str, requests: int = 20) -> list[tuple[int, str, str]]:
    """`requests` GETs of one key at once: each answer's status, value and X-Cache."""

    def fetch(_: int) -> tuple[int, str, str]:
        response = app.test_client().get(f"/data/{key}")
        return response.status_code, response.get_json().get("value"), response.headers["X-Cache"]

    with ThreadPoolExecutor(max_workers=requests) as pool:
        return list(pool.map(fetch, range(requests)))


def fcalls(server: RedisServer) -> int:
    return server.client().info("commandstats").get("cmdstat_fcall", {}).get("calls", 0)


def takeovers() -> float:
    return REGISTRY.get_sample_value("cache_app_single_flight_takeovers_total") or 0.0


def test_fifty_concurrent_cold_requests_make_one_store_call(make_app, store, redis_server):
    store.delay = 0.5
    results = concurrently(make_app(), "crowded", requests=50)
    assert [result[:2] for result in results] == [(200, "CROWDED")] * 50
    assert store.calls == 1
    assert redis_server.client().keys("lock|*") == []


def test_a_dead_loaders_lock_is_taken_over_by_one_waiter(make_app, store, redis_server):
    # A loader that died mid-load: its lock stands for 10 s and nobody renews it.
    redis_server.client().set("lock|orphan", "dead-loaders-token", px=10_000)
    before = takeovers()
    started = time.monotonic()
    results = concurrently(make_app(**QUICK), "orphan")
    elapsed = time.monotonic() - started
    assert [result[:2] for result in results] == [(200, "ORPHAN")] * 20
    assert store.calls == 1
    assert takeovers() == before + 1
    # After about lock_wait (0.5 s) and one load (0.3 s), long before the lock's 10 s.
    assert elapsed < 3, elapsed
    assert redis_server.client().get("lock|orphan") is None


def test_a_loader_slower_than_lock_wait_keeps_its_lock(make_app, store):
    store.delay = 1.5
    app = make_app(lock_ttl=10.0, lock_renew_interval=0.3, lock_wait=1.0, lock_wait_max=10.0)
    results = concurrently(app, "sluggish")
    assert [result[:2] for result in results] == [(200, "SLUGGISH")] * 20
    assert store.calls == 1


def test_waiters_wait_at_most_lock_wait_max_for_a_live_loader(make_app, store, redis_server):
    """A loader that renews its lock but never finishes holds each waiter lock_wait_max at most."""
    admin = redis_server.client()
    admin.set("lock|hung", "live-loaders-token", px=10_000)
    hung = threading.Event()

    def renew_forever() -> None:
        while not hung.wait(0.1):
            admin.pexpire("lock|hung", 10_000)

    renewal = threading.Thread(target=renew_forever)
    renewal.start()
    app = make_app(**{**QUICK, "lock_wait_max": 1.5})
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        started = time.monotonic()
        response = pool.submit(app.test_client().get, "/data/hung").result(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        hung.set()  # a waiter that would wait forever can now take the lock over and end
        renewal.join()
        pool.shutdown()
    assert response.status_code == 200
    assert response.get_json()["value"] == "HUNG"
    assert 1.5 <= elapsed < 4, elapsed
    assert store.calls == 1


class FailingStore(CountingStore):
    def load(self, key: str) -> str:
        super().load(key)
        raise RuntimeError("the database is down")


@pytest.mark.parametrize("failing", [False, True], ids=["load", "failed load"])
def test_the_lock_is_released_and_no_longer_renewed_after_a_load(settings, redis_server, failing):
    store = FailingStore() if failing else CountingStore()
    app = create_app(dataclasses.replace(settings, local_cache_size=0, **QUICK), store=store)
    store.delay = 0.7  # long enough for a few renewals
    before = fcalls(redis_server)
    response = app.test_client().get("/data/released")
    assert response.status_code == (500 if failing else 200)
    assert redis_server.client().keys("lock|*") == []
    after_load = fcalls(redis_server)
    assert after_load >= before + 3  # renewals while the store worked, then the release
    time.sleep(5 * QUICK["lock_renew_interval"])
    assert fcalls(redis_server) == after_load  # the renewal stopped with the load


def test_an_app_user_without_scripting_serves_misses_hits_and_single_flight(tmp_path, store):
    """The ACL user as deployed: FCALL of the library's functions, and no EVAL or SCRIPT."""
    server, settings = with_app_user(
        tmp_path,
        "~* &__redis__:invalidate +get +set +del +ttl +pttl +pexpire +ping +fcall "
        "+client|id +client|tracking +subscribe",
        LOCK_RENEW_INTERVAL="0.2",
        LOCK_WAIT="0.5",
    )
    app = create_app(settings, store=store)
    try:
        client = app.test_client()
        first, second = client.get("/data/acl"), client.get("/data/acl")
        assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")

        # A dead loader's lock and a load slower than lock_wait: take over, renew, release.
        store.delay = 1.0
        server.client().set("lock|contended", "dead-loaders-token", px=10_000)
        results = concurrently(app, "contended")
        assert [result[:2] for result in results] == [(200, "CONTENDED")] * 20
        assert store.calls == 2
        assert server.client().keys("lock|*") == []

        as_app = redis.Redis(
            port=server.port, username="app", password=settings.redis_password, socket_timeout=2
        )
        refused = [
            ("EVAL", "while true do end", 0),
            ("EVALSHA", "0" * 40, 0),
            ("SCRIPT", "LOAD", "return 1"),
            ("FUNCTION", "LOAD", "REPLACE", "#!lua name=mine\n"),
            ("FUNCTION", "DELETE", "cache_app"),
            ("FUNCTION", "FLUSH"),
        ]
        for command in refused:
            with pytest.raises(redis.exceptions.NoPermissionError):
                as_app.execute_command(*command)
    finally:
        app.extensions["cache_app"].near.close()
        server.stop()


def test_a_missing_function_library_is_a_bypass_reported_once(
    make_app, store, redis_server, caplog
):
    redis_server.client().function_flush()
    app = make_app(**QUICK)
    caplog.set_level(logging.ERROR, logger="cache_app")

    # A miss loads and stores; its lock cannot be released and expires by itself.
    response = app.test_client().get("/data/plain")
    assert (response.status_code, response.headers["X-Cache"]) == (200, "MISS")
    # Waiters on a dead loader cannot take its lock over: each answers from the store.
    redis_server.client().set("lock|orphan", "dead-loaders-token", px=10_000)
    results = concurrently(app, "orphan", requests=5)
    assert results == [(200, "ORPHAN", "BYPASS")] * 5

    reports = [r.getMessage() for r in caplog.records if "not loaded" in r.getMessage()]
    assert len(reports) == 1, reports
    assert "FUNCTION LOAD" in reports[0]
