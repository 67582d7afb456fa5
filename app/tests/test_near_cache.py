"""Each worker's local copy of hot keys: served without a round trip, dropped on Redis's reports."""

from __future__ import annotations

import dataclasses
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import redis

from cache_app import config, create_app
from cache_app.near_cache import NearCache
from conftest import RedisServer, SentinelServer, wait_for, with_app_user

DB, CACHE = "database (slow)", "cache"


def near(app) -> NearCache:
    return app.extensions["cache_app"].near


def gets(server: RedisServer) -> int:
    """GETs the server has answered (the app's reads; PINGs and PTTLs are not counted)."""
    return server.client().info("commandstats").get("cmdstat_get", {}).get("calls", 0)


def warm(app, key: str) -> None:
    """A miss (stored in Redis), then a hit read from Redis, which fills the local copy."""
    client = app.test_client()
    assert client.get(f"/data/{key}").headers["X-Cache"] == "MISS"
    assert wait_for(lambda: near(app).live, timeout=5), "the invalidation listener never started"
    assert client.get(f"/data/{key}").get_json()["source"] == CACHE


def test_warm_hits_are_answered_without_asking_redis(app, store, redis_server):
    warm(app, "local")
    before = gets(redis_server)
    client = app.test_client()
    for _ in range(20):
        answer = client.get("/data/local")
        assert answer.get_json() == {"key": "local", "value": "LOCAL", "source": CACHE}
        assert answer.headers["X-Cache"] == "HIT"
    assert gets(redis_server) == before
    assert store.calls == 1
    assert client.get("/healthz").get_json() == {"status": "ok", "local_cache": "live"}


def test_a_change_in_redis_reaches_the_local_copy_at_once(app, store, redis_server):
    warm(app, "changing")
    direct, client = redis_server.client(), app.test_client()
    direct.set("changing", "CHANGED ELSEWHERE", ex=60)
    assert wait_for(
        lambda: client.get("/data/changing").get_json()["value"] == "CHANGED ELSEWHERE", 0.5
    )
    direct.delete("changing")
    assert wait_for(lambda: client.get("/data/changing").headers["X-Cache"] == "MISS", 0.5)
    assert store.calls == 2


def test_flushall_empties_the_local_copy(app, store, redis_server):
    for key in ("one", "two"):
        warm(app, key)
    redis_server.client().flushall()
    client = app.test_client()
    assert wait_for(lambda: client.get("/data/one").headers["X-Cache"] == "MISS", 0.5)
    assert client.get("/data/two").headers["X-Cache"] == "MISS"


def test_the_local_copy_expires_with_the_key(tmp_path, store):
    """Expiry comes from the key's PTTL, not from Redis reporting it: with Redis's own expiry
    cycle off, only a read of the key would make Redis notice, and the copy must not wait."""
    server = RedisServer(tmp_path, extra="enable-debug-command local\n")
    server.start()
    try:
        server.client().execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        (tmp_path / "pw").write_text(server.password)
        settings = config.from_env(
            {
                "CACHE_APP_REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
                "CACHE_APP_REDIS_PASSWORD_FILE": str(tmp_path / "pw"),
                "CACHE_APP_CACHE_TTL": "1",
            }
        )
        app = create_app(settings, store=store)
        warm(app, "brief")
        assert app.test_client().get("/data/brief").headers["X-Cache"] == "HIT"
        wait_for(lambda: False, timeout=1.2)
        assert app.test_client().get("/data/brief").headers["X-Cache"] == "MISS"
    finally:
        server.stop()


def test_a_value_read_while_it_changes_is_not_kept(app, store, redis_server, monkeypatch):
    """The read's answer is on its way when Redis reports a change: answer it, don't keep it."""
    warm(app, "racing")
    redis_server.client().delete("racing")
    client = app.test_client()
    # Once the report is in: a miss, stored again (the miss itself does not copy it).
    assert wait_for(lambda: client.get("/data/racing").headers["X-Cache"] == "MISS", 0.5)
    direct = redis_server.client()
    execute = redis.client.Pipeline.execute

    def read_then_change(self, *args, **kwargs):
        answer = execute(self, *args, **kwargs)
        direct.set("racing", "NEWER", ex=60)
        wait_for(lambda: False, timeout=0.2)  # the listener hears of it before the read returns
        return answer

    with monkeypatch.context() as patch:
        patch.setattr(redis.client.Pipeline, "execute", read_then_change)
        assert client.get("/data/racing").get_json()["value"] == "RACING"  # read before the SET
    assert client.get("/data/racing").get_json()["value"] == "NEWER"


def test_a_user_without_pttl_still_caches_through_redis(tmp_path, store):
    """Tracking allowed but PTTL refused: values are answered, just never copied."""
    rules = "~* &__redis__:invalidate +get +set +del +ping +client|id +client|tracking +subscribe"
    server, settings = with_app_user(tmp_path, rules)
    try:
        app = create_app(settings, store=store)
        warm(app, "nopttl")
        before = gets(server)
        assert app.test_client().get("/data/nopttl").headers["X-Cache"] == "HIT"
        assert gets(server) == before + 1
    finally:
        server.stop()


def test_the_copy_is_not_used_while_redis_cannot_report(settings, store, redis_server):
    """Redis frozen (SIGSTOP): its connections stay open, the health PING goes unanswered. With
    stale answers off (test_redis_failures.py has them on), held keys go to the store."""
    app = create_app(dataclasses.replace(settings, serve_stale=False), store=store)
    warm(app, "frozen")
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        # The PING goes out after 1 s of quiet and is given the client timeout, 0.5 s.
        assert wait_for(lambda: not near(app).live, timeout=3)
        answer = app.test_client().get("/data/frozen")
        assert answer.status_code == 200
        assert answer.get_json()["source"] == DB
        assert answer.headers["X-Cache"] == "BYPASS"
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert wait_for(lambda: near(app).live, timeout=5), "the copy did not come back"
    assert app.test_client().get("/data/frozen").headers["X-Cache"] == "HIT"  # refills it
    before = gets(redis_server)
    assert app.test_client().get("/data/frozen").headers["X-Cache"] == "HIT"
    assert gets(redis_server) == before


def test_reads_from_a_replica_follow_the_replica_reports(tmp_path, store):
    """With reads on a replica, the listener is there too: a DEL on the primary reaches it."""
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    primary = RedisServer(tmp_path / "p")
    primary.start()
    replica = RedisServer(
        tmp_path / "r", password=primary.password, extra=f"replicaof 127.0.0.1 {primary.port}\n"
    )
    replica.start()
    try:
        assert wait_for(
            lambda: replica.client().info("replication")["master_link_status"] == "up", 10
        )
        (tmp_path / "pw").write_text(primary.password)
        settings = config.from_env(
            {
                "CACHE_APP_REDIS_URL": f"redis://127.0.0.1:{primary.port}/0",
                "CACHE_APP_REDIS_READ_URL": f"redis://127.0.0.1:{replica.port}/0",
                "CACHE_APP_REDIS_PASSWORD_FILE": str(tmp_path / "pw"),
            }
        )
        app = create_app(settings, store=store)
        client = app.test_client()
        assert client.get("/data/replicated").headers["X-Cache"] == "MISS"
        assert wait_for(lambda: near(app).live, timeout=5)

        def answered_locally() -> bool:
            before = gets(replica)
            answer = client.get("/data/replicated")
            return answer.headers["X-Cache"] == "HIT" and gets(replica) == before

        # Until the SET has reached the replica, and its report the listener, a hit may still be
        # read from the replica (and the copy dropped): then one from the copy, without a GET.
        assert wait_for(answered_locally, 2)
        primary.client().delete("replicated")
        assert wait_for(lambda: client.get("/data/replicated").headers["X-Cache"] == "MISS", 0.5)
    finally:
        replica.stop()
        primary.stop()


def test_without_tracking_rights_the_app_caches_through_redis(tmp_path, store):
    """An ACL user without CLIENT TRACKING: no local copy, and every hit still served by Redis."""
    server, settings = with_app_user(tmp_path, "~* +get +set +del +pttl +ping")
    try:
        app = create_app(settings, store=store)
        client = app.test_client()
        client.get("/data/refused")
        wait_for(lambda: near(app).live, timeout=1.5)
        assert not near(app).live
        assert client.get("/healthz").get_json() == {"status": "ok", "local_cache": "down"}
        before = gets(server)
        assert client.get("/data/refused").headers["X-Cache"] == "HIT"
        assert gets(server) == before + 1
    finally:
        server.stop()


def test_size_zero_turns_the_local_copy_off(settings, store, redis_server):
    assert config.from_env({"CACHE_APP_LOCAL_CACHE_SIZE": "0"}).local_cache_size == 0
    app = create_app(dataclasses.replace(settings, local_cache_size=0), store=store)
    assert near(app) is None
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "local_cache": "off"}
    client.get("/data/off")
    before = gets(redis_server)
    for _ in range(3):
        assert client.get("/data/off").headers["X-Cache"] == "HIT"
    assert gets(redis_server) == before + 3


def test_with_sentinel_the_copy_reads_from_the_replica_it_hears_from(tmp_path, store):
    """Two replicas: the copy must be filled from the replica whose reports it hears. Filled
    from the other, a value read there before it applied a change would be kept after the
    report came and went."""
    servers = {}
    for name in ("p", "r1", "r2"):
        (tmp_path / name).mkdir()
    servers["p"] = RedisServer(tmp_path / "p")
    servers["p"].start()
    replicaof = f"replicaof 127.0.0.1 {servers['p'].port}\n"
    for name in ("r1", "r2"):
        servers[name] = RedisServer(tmp_path / name, servers["p"].password, extra=replicaof)
        servers[name].start()
    sentinel = SentinelServer(tmp_path, servers["p"])
    try:
        watcher = sentinel.client()

        def replicas_known() -> bool:
            return sum(r["is_slave"] for r in watcher.sentinel_slaves("cache")) == 2

        def linked(server: RedisServer) -> bool:
            return server.client().info("replication")["master_link_status"] == "up"

        # The primary's first sync waits 5 s for more replicas (repl-diskless-sync-delay).
        assert wait_for(lambda: linked(servers["r1"]) and linked(servers["r2"]), timeout=20)
        assert wait_for(replicas_known, timeout=15), "Sentinel did not find both replicas"
        (tmp_path / "pw").write_text(servers["p"].password)
        (tmp_path / "spw").write_text(sentinel.password)
        settings = config.from_env(
            {
                "CACHE_APP_SENTINELS": f"127.0.0.1:{sentinel.port}",
                "CACHE_APP_SENTINEL_PASSWORD_FILE": str(tmp_path / "spw"),
                "CACHE_APP_REDIS_PASSWORD_FILE": str(tmp_path / "pw"),
                "CACHE_APP_READ_FROM": "replica",
            }
        )
        app = create_app(settings, store=store)
        client = app.test_client()
        keys = [f"split{n}" for n in range(20)]
        for key in keys:
            assert client.get(f"/data/{key}").headers["X-Cache"] == "MISS"
        assert wait_for(lambda: near(app).live, timeout=5)
        heard = near(app).server
        other = next(s for s in servers.values() if s.port not in (heard[1], servers["p"].port))
        assert wait_for(lambda: other.client().get(keys[-1]) == keys[-1].upper(), timeout=2)

        # The other replica stops applying the primary's writes for a while. Meanwhile each key
        # changes and is asked for, concurrently (a reader's pool would use both replicas).
        other.client().execute_command("CLIENT", "PAUSE", "1500", "WRITE")
        for key in keys:
            servers["p"].client().set(key, "NEWER", ex=60)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda k: app.test_client().get(f"/data/{k}"), keys * 4))
        assert wait_for(lambda: other.client().get(keys[-1]) == "NEWER", timeout=5)

        def answers() -> set[str]:
            return {client.get(f"/data/{key}").get_json()["value"] for key in keys}

        assert wait_for(lambda: answers() == {"NEWER"}, timeout=0.5), answers()
    finally:
        sentinel.stop()
        for server in servers.values():
            server.stop()
