"""The app against a Sentinel as the redis_sentinel role sets it up: `default` off, and an `app`
user with only the role's rules for it; the Sentinels' addresses may be IPv6, in brackets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis
import yaml

from cache_app import config, create_app
from cache_app.config import ConfigError
from conftest import RedisServer, free_port, wait_for

ROLE_VARS = Path(__file__).resolve().parents[2] / "roles/redis_sentinel/vars/main.yml"
ADMIN_PASSWORD = "sentinel-admin-password-0123456789"
APP_PASSWORD = "sentinel-app-password-0123456789"


def app_rules() -> str:
    """What the role lets the app's Sentinel user run."""
    return yaml.safe_load(ROLE_VARS.read_text())["_redis_sentinel_acl_rules"]["app"]


class UsersSentinel:
    """redis-server --sentinel on 127.0.0.1 and ::1 with the role's users, watching `primary`."""

    def __init__(self, workdir: Path, primary: RedisServer) -> None:
        self.port = free_port()
        conf = workdir / f"sentinel-{self.port}.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1 ::1\ndir {workdir}\n"
            "user default reset off\n"
            f"user admin reset on >{ADMIN_PASSWORD} ~* &* +@all\n"
            f"user app reset on >{APP_PASSWORD} {app_rules()}\n"
            f"sentinel monitor cache 127.0.0.1 {primary.port} 1\n"
            f"sentinel auth-pass cache {primary.password}\n"
            "sentinel down-after-milliseconds cache 1000\n"
        )
        conf.chmod(0o600)
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
        )

    def admin(self) -> redis.Redis:
        return redis.Redis(
            port=self.port,
            username="admin",
            password=ADMIN_PASSWORD,
            decode_responses=True,
            socket_timeout=2,
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def test_the_app_finds_primary_and_replica_as_sentinels_app_user_over_ipv6(tmp_path, store):
    """Only the role's rules, and nothing the app sends Sentinel is refused (its ACL log)."""
    (tmp_path / "p").mkdir()
    primary = RedisServer(tmp_path / "p")
    primary.start()
    (tmp_path / "r").mkdir()
    replica = RedisServer(
        tmp_path / "r", password=primary.password, extra=f"replicaof 127.0.0.1 {primary.port}\n"
    )
    replica.start()
    sentinel = UsersSentinel(tmp_path, primary)
    app = None
    try:
        admin = sentinel.admin()
        assert wait_for(lambda: _knows_replica(admin), timeout=15), "no replica seen"
        (tmp_path / "pw").write_text(primary.password)
        (tmp_path / "spw").write_text(APP_PASSWORD)
        settings = config.from_env(
            {
                "CACHE_APP_SENTINELS": f"[::1]:{sentinel.port}",
                "CACHE_APP_SENTINEL_USERNAME": "app",
                "CACHE_APP_SENTINEL_PASSWORD_FILE": str(tmp_path / "spw"),
                "CACHE_APP_REDIS_PASSWORD_FILE": str(tmp_path / "pw"),
                "CACHE_APP_READ_FROM": "replica",
            }
        )
        app = create_app(settings, store=store)
        client = app.test_client()
        assert client.get("/data/acl").json["source"] == "database (slow)"
        assert primary.client().get("acl") == "ACL"
        assert wait_for(lambda: client.get("/data/acl").json["source"] == "cache", timeout=2)
        assert admin.acl_log() == []
    finally:
        if app is not None and app.extensions["cache_app"].near is not None:
            app.extensions["cache_app"].near.close()
        sentinel.stop()
        replica.stop()
        primary.stop()


def _knows_replica(admin: redis.Redis) -> bool:
    try:
        return any(r["is_slave"] for r in admin.sentinel_slaves("cache"))
    except redis.ConnectionError:
        return False


def test_sentinel_addresses_take_names_ipv4_and_bracketed_ipv6():
    settings = config.from_env(
        {"CACHE_APP_SENTINELS": "[2001:db8::1]:26379, 10.0.10.11:26380,redis1.example.com:26379"}
    )
    assert settings.sentinels == (
        ("2001:db8::1", 26379),
        ("10.0.10.11", 26380),
        ("redis1.example.com", 26379),
    )


@pytest.mark.parametrize(
    "item", ["2001:db8::1:26379", "[redis1]:26379", "[2001:db8::1]", "[::1]:", "redis1", ":26379"]
)
def test_ambiguous_or_malformed_sentinel_addresses_stop_start_up(item):
    with pytest.raises(ConfigError, match="is not host:port or"):
        config.from_env({"CACHE_APP_SENTINELS": item})
