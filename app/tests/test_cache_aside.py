"""The seed's contract and what a production cache adds, against a real redis-server."""

from __future__ import annotations

import dataclasses
import time

import flask
import pytest
import redis

from cache_app import config, create_app
from cache_app.config import ConfigError, from_env
from conftest import RedisServer, SentinelServer, make_tls_files, wait_for, with_app_user

DB, CACHE = "database (slow)", "cache"


def test_miss_then_hit(client, store):
    first = client.get("/data/bonjour")
    assert first.status_code == 200
    assert first.get_json() == {"key": "bonjour", "value": "BONJOUR", "source": DB}
    assert first.headers["X-Cache"] == "MISS"
    second = client.get("/data/bonjour")
    assert second.get_json() == {"key": "bonjour", "value": "BONJOUR", "source": CACHE}
    assert second.headers["X-Cache"] == "HIT"
    assert store.calls == 1


@pytest.mark.parametrize(
    "value", ["plain", 'qu"ote\\ and\nnewline', "caf\u00e9 \u2603 \U0001f600", ""]
)
def test_the_answer_is_the_json_flask_writes_for_any_value(app, client, redis_server, value):
    redis_server.client().set("stored", value, ex=60)
    for _ in range(2):  # from Redis, then from the worker's local copy
        answer = client.get("/data/stored")
        assert answer.status_code == 200
        assert answer.content_type == "application/json"
        assert answer.get_json() == {"key": "stored", "value": value, "source": CACHE}
        with app.app_context():
            expected = flask.jsonify(key="stored", value=value, source=CACHE).get_data()
        assert answer.get_data() == expected


def test_value_stored_as_plain_string_with_default_ttl_of_60(client, redis_server):
    client.get("/data/testkey")
    direct = redis_server.client()
    assert direct.get("testkey") == "TESTKEY"
    assert 0 < direct.ttl("testkey") <= 60
    assert direct.ttl("testkey") > 55


def test_configured_ttl_and_prefix(settings, store, redis_server):
    app = create_app(dataclasses.replace(settings, cache_ttl=7, key_prefix="app:"), store=store)
    app.test_client().get("/data/k1")
    direct = redis_server.client()
    assert direct.get("k1") is None
    assert 0 < direct.ttl("app:k1") <= 7


def test_expiry_makes_the_next_request_a_miss(settings, store):
    client = create_app(dataclasses.replace(settings, cache_ttl=1), store=store).test_client()
    assert client.get("/data/short").headers["X-Cache"] == "MISS"
    assert client.get("/data/short").headers["X-Cache"] == "HIT"
    time.sleep(1.6)
    again = client.get("/data/short")
    assert again.headers["X-Cache"] == "MISS"
    assert again.get_json()["source"] == DB
    assert store.calls == 2


def test_redis_down_bypasses_cache_then_recovers(client, store, redis_server):
    assert client.get("/data/resilient").headers["X-Cache"] == "MISS"
    redis_server.stop()
    for _ in range(3):
        response = client.get("/data/resilient")
        assert response.status_code == 200
        assert response.get_json() == {"key": "resilient", "value": "RESILIENT", "source": DB}
        assert response.headers["X-Cache"] == "BYPASS"
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["status"] == "unavailable"
    assert "redis" in health.get_json()["reason"]

    redis_server.start()
    assert client.get("/healthz").status_code == 200
    assert client.get("/data/resilient").headers["X-Cache"] == "MISS"
    assert client.get("/data/resilient").headers["X-Cache"] == "HIT"


def test_dead_redis_costs_at_most_the_timeout(settings, store):
    # Nothing listens there: the answer still comes, from the store, quickly.
    unreachable = dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0")
    client = create_app(unreachable, store=store).test_client()
    response = client.get("/data/x")
    assert response.status_code == 200
    assert response.headers["X-Cache"] == "BYPASS"


def test_wrong_password_is_a_bypass_not_a_500(settings, store):
    client = create_app(dataclasses.replace(settings, redis_password="wrong"), store=store)
    response = client.test_client().get("/data/x")
    assert response.status_code == 200
    assert response.headers["X-Cache"] == "BYPASS"


@pytest.mark.parametrize(
    "path",
    [
        "/data/" + "k" * 129,
        "/data/a%20b",
        "/data/a/b",
        "/data/%C3%A9t%C3%A9",
        "/data/a;b",
        "/data/lock%7Ckey",
    ],
)
def test_bad_keys_get_a_json_400(client, store, path):
    response = client.get(path)
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["status"] == 400
    assert store.calls == 0


def test_unknown_route_and_wrong_method_are_json(client):
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "Not Found"
    wrong = client.post("/data/x")
    assert wrong.status_code == 405
    assert wrong.get_json()["error"] == "Method Not Allowed"


def test_metrics_count_hits_misses_and_store_calls(client):
    def value(name: str) -> float:
        body = client.get("/metrics").get_data(as_text=True)
        line = next(line for line in body.splitlines() if line.startswith(name + " "))
        return float(line.split()[1])

    before = {n: value(n) for n in ("cache_app_cache_hits_total", "cache_app_cache_misses_total")}
    client.get("/data/counted")
    client.get("/data/counted")
    assert value("cache_app_cache_misses_total") == before["cache_app_cache_misses_total"] + 1
    assert value("cache_app_cache_hits_total") == before["cache_app_cache_hits_total"] + 1
    assert "cache_app_request_seconds_bucket" in client.get("/metrics").get_data(as_text=True)


def test_settings_come_from_the_environment(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret-from-file\n")
    settings = from_env(
        {
            "CACHE_APP_REDIS_URL": "redis://primary:6379/0",
            "CACHE_APP_REDIS_READ_URL": "redis://replica:6380/0",
            "CACHE_APP_REDIS_PASSWORD_FILE": str(secret),
            "CACHE_APP_CACHE_TTL": "30",
        }
    )
    assert settings.redis_password == "s3cret-from-file"
    assert settings.cache_ttl == 30
    assert settings.redis_read_url == "redis://replica:6380/0"
    assert "s3cret" not in repr(settings)
    assert from_env({}).cache_ttl == 60
    assert from_env({}).slow_store_delay == 2.0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CACHE_APP_CACHE_TTL": "soon"}, "CACHE_APP_CACHE_TTL"),
        ({"CACHE_APP_REDIS_TIMEOUT": "-1"}, "greater than 0"),
        ({"CACHE_APP_REDIS_PASSWORD_FILE": "/nonexistent/pw"}, "cannot read"),
        ({"CACHE_APP_LOCAL_CACHE_SIZE": "-1"}, "greater than or equal to 0"),
        ({"CACHE_APP_LOCAL_CACHE_SIZE": "many"}, "is not a int"),
        ({"CACHE_APP_LOCAL_CACHE_TTL": "0"}, "greater than 0"),
        ({"CACHE_APP_SERVE_STALE": "maybe"}, "CACHE_APP_SERVE_STALE: 'maybe' is not true or false"),
        ({"CACHE_APP_LOCK_RENEW_INTERVAL": "0"}, "greater than 0"),
        (
            {"CACHE_APP_LOCK_TTL": "1.5", "CACHE_APP_LOCK_RENEW_INTERVAL": "1"},
            "LOCK_TTL .* must be at least twice CACHE_APP_LOCK_RENEW_INTERVAL",
        ),
        (
            {"CACHE_APP_LOCK_WAIT": "1", "CACHE_APP_LOCK_RENEW_INTERVAL": "1"},
            "LOCK_WAIT .* must be longer than CACHE_APP_LOCK_RENEW_INTERVAL",
        ),
        (
            {"CACHE_APP_LOCK_WAIT": "5", "CACHE_APP_LOCK_WAIT_MAX": "4"},
            "LOCK_WAIT_MAX .* must be longer than CACHE_APP_LOCK_WAIT",
        ),
    ],
)
def test_bad_settings_stop_start_up(env, message):
    with pytest.raises(ConfigError, match=message):
        from_env(env)


def test_sentinel_names_the_primary_and_the_app_follows_a_failover(tmp_path, store):
    """Writes go where Sentinel says; after a failover, new values are cached on the new primary."""
    primary = RedisServer(tmp_path / "p")
    (tmp_path / "p").mkdir()
    primary.start()
    (tmp_path / "r").mkdir()
    replica = RedisServer(
        tmp_path / "r", password=primary.password, extra=f"replicaof 127.0.0.1 {primary.port}\n"
    )
    replica.start()
    sentinel = SentinelServer(tmp_path, primary)
    try:
        watcher = sentinel.client()
        assert wait_for(lambda: _knows_replica(watcher), timeout=15), "no replica seen"
        (tmp_path / "pw").write_text(primary.password)
        (tmp_path / "spw").write_text(sentinel.password)
        settings = config.from_env(
            {
                "CACHE_APP_SENTINELS": f"127.0.0.1:{sentinel.port}",
                "CACHE_APP_SENTINEL_MASTER": sentinel.name,
                "CACHE_APP_SENTINEL_PASSWORD_FILE": str(tmp_path / "spw"),
                "CACHE_APP_REDIS_PASSWORD_FILE": str(tmp_path / "pw"),
                "CACHE_APP_READ_FROM": "replica",
            }
        )
        client = create_app(settings, store=store).test_client()
        assert client.get("/data/before").json["source"] == "database (slow)"
        assert primary.client().get("before") == "BEFORE"
        assert wait_for(lambda: client.get("/data/before").json["source"] == "cache", timeout=2)

        watcher.execute_command("SENTINEL", "FAILOVER", sentinel.name)
        assert wait_for(lambda: _role(replica) == "master", timeout=15), "no promotion"
        # Sentinel then turns the old primary into a replica of the new one.
        assert wait_for(lambda: _role(primary) == "slave", timeout=15), "old primary not demoted"
        # The app finds the new primary by itself (a connection to the demoted one is dropped on
        # its first READONLY answer, a bypass): the next misses are cached there.
        assert wait_for(
            lambda: client.get("/data/after").headers["X-Cache"] in ("MISS", "HIT"), timeout=15
        )
        assert replica.client().get("after") == "AFTER"
        assert client.get("/data/after").json["source"] == "cache"
    finally:
        sentinel.stop()
        replica.stop()
        primary.stop()


def _role(server: RedisServer) -> str:
    return server.client().info("replication")["role"]


def _knows_replica(watcher) -> bool:
    return any(r["is_slave"] for r in watcher.sentinel_slaves("cache"))


def test_acl_user_limited_to_the_prefix_serves_misses_hits_and_locks(tmp_path, store):
    """As deployed: an ACL user with only the app's commands, on the app's key prefix."""
    server, settings = with_app_user(
        tmp_path,
        "~cache:* &__redis__:invalidate +get +set +del +ttl +pttl +pexpire +ping +fcall "
        "+client|id +client|tracking +subscribe",
        KEY_PREFIX="cache:",
    )
    try:
        app = create_app(settings, store=store)
        client = app.test_client()
        first, second = client.get("/data/acl"), client.get("/data/acl")
        assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
        assert server.client().get("cache:acl") == "ACL"
        assert client.get("/healthz").status_code == 200
        # The single-flight lock was released (its function runs GET and DEL), not left to expire.
        assert server.client().keys("cache:lock|*") == []
        # The local copy hears of changes under the prefix; hits then skip Redis.
        assert wait_for(lambda: app.extensions["cache_app"].near.live, timeout=5)
        server.client().set("cache:acl", "CHANGED")
        assert wait_for(lambda: client.get("/data/acl").json["value"] == "CHANGED", timeout=0.5)
        client.get("/data/acl")  # copied by now: the next hit does not reach Redis

        def gets() -> int:
            return server.client().info("commandstats")["cmdstat_get"]["calls"]

        before = gets()
        assert client.get("/data/acl").json["value"] == "CHANGED"
        assert gets() == before
    finally:
        server.stop()


def test_tls_with_the_ca_caches_and_refuses_a_server_it_cannot_verify(tmp_path, store):
    """As deployed with redis_tls: rediss:// only, the certificate checked against the CA."""
    tls = make_tls_files(tmp_path)
    server = RedisServer(tmp_path, tls=tls)
    server.start()
    try:
        (tmp_path / "pw").write_text(server.password)
        env = {
            "CACHE_APP_REDIS_URL": f"rediss://127.0.0.1:{server.port}/0",
            "CACHE_APP_REDIS_PASSWORD_FILE": str(tmp_path / "pw"),
            "CACHE_APP_REDIS_TLS_CA_FILE": str(tls.ca),
        }
        client = create_app(config.from_env(env), store=store).test_client()
        first, second = client.get("/data/tls"), client.get("/data/tls")
        assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
        assert server.client().get("tls") == "TLS"

        # Plaintext to the TLS port gets no answer.
        plain = redis.Redis(port=server.port, password=server.password, socket_timeout=1)
        with pytest.raises(redis.ConnectionError):
            plain.ping()

        # A CA that did not sign the server's certificate: the cache is bypassed, never a 500.
        other = make_tls_files(tmp_path, "other")
        env["CACHE_APP_REDIS_TLS_CA_FILE"] = str(other.ca)
        untrusting = create_app(config.from_env(env), store=store).test_client()
        response = untrusting.get("/data/tls")
        assert (response.status_code, response.headers["X-Cache"]) == (200, "BYPASS")
        health = untrusting.get("/healthz")
        assert health.status_code == 503
        assert "certificate" in health.get_data(as_text=True).lower()
    finally:
        server.stop()


def test_tls_ca_with_a_plaintext_url_stops_start_up(tmp_path):
    tls = make_tls_files(tmp_path)
    env = {
        "CACHE_APP_REDIS_URL": "redis://127.0.0.1:6379/0",
        "CACHE_APP_REDIS_TLS_CA_FILE": str(tls.ca),
    }
    with pytest.raises(config.ConfigError, match="rediss://"):
        config.from_env(env)
