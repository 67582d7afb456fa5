"""Sentinel's ACL users as deployed: the app's credential may only ask where the primary and the
replicas are, the admin may still change Sentinel, and the Sentinels link as their peer user.
In the cluster scenario it runs after test_rotation.py (the secret files then hold the rotated
passwords), over TLS as the scenario runs."""

from __future__ import annotations

import re
import time

import pytest
import redis
from redis.sentinel import Sentinel

from conftest import group, secret
from shared.helpers import (
    SENTINEL_USERS,
    TLS_CA,
    files_holding,
    platforms,
    redis_client,
    wait_for,
)

SENTINELS = group("redis_sentinel")
APP = group("cache_app")[0]
NAME = "cache"
PORT = 26379

# Probes chosen to do no harm should one be let through: unknown masters and users, a value Sentinel
# already has, SHUTDOWN ABORT with no shutdown in progress.
FORBIDDEN_TO_APP = [
    ("SENTINEL", "MONITOR", "probe", "127.0.0.1", "1", "1"),
    ("SENTINEL", "REMOVE", "no-such-master"),
    ("SENTINEL", "SET", "no-such-master", "quorum", "1"),
    ("SENTINEL", "CONFIG", "SET", "resolve-hostnames", "yes"),
    ("SENTINEL", "CONFIG", "GET", "*"),
    ("SENTINEL", "FAILOVER", "no-such-master"),
    ("SENTINEL", "RESET", "no-such-master"),
    ("SENTINEL", "FLUSHCONFIG"),
    ("SENTINEL", "SENTINELS", NAME),
    ("SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "127.0.0.1", "1", "0", "*"),
    ("ACL", "LIST"),
    ("ACL", "DELUSER", "no-such-user"),
    ("SHUTDOWN", "ABORT"),
    ("CLIENT", "KILL", "ID", "0"),
    ("INFO",),
    ("PUBLISH", "__sentinel__:hello", "probe"),
]
# Sentinel 7.0 has no CONFIG command at all: refused before any ACL check.
UNKNOWN_TO_SENTINEL = [("CONFIG", "GET", "*"), ("CONFIG", "SET", "port", "1")]


@pytest.fixture(scope="module")
def app_credential(hosts) -> tuple[str, str]:
    """The app's Sentinel user and password, read on the app host where the role put them."""
    host = hosts[APP]
    env = host.file("/etc/cache-app/cache-app.env").content_string
    username = re.search(r"^CACHE_APP_SENTINEL_USERNAME=(.+)$", env, re.MULTILINE)
    assert username, "the app's environment names no Sentinel user"
    password = host.file("/etc/cache-app/sentinel-password").content_string.strip()
    return username.group(1), password


def test_the_app_credential_finds_the_primary_and_the_replicas(address, app_credential, sentinel):
    """What redis-py's Sentinel client sends for master_for and slave_for is allowed."""
    username, password = app_credential
    finder = Sentinel(
        [(address[h], PORT) for h in SENTINELS],
        sentinel_kwargs={
            "username": username,
            "password": password,
            "socket_timeout": 3,
            **({"ssl": True, "ssl_ca_certs": TLS_CA} if TLS_CA else {}),
        },
    )
    primary = sentinel(SENTINELS[0]).sentinel_get_master_addr_by_name(NAME)
    assert finder.discover_master(NAME) == (primary[0], int(primary[1]))
    assert len(finder.discover_slaves(NAME)) == len(SENTINELS) - 1


@pytest.mark.parametrize("command", FORBIDDEN_TO_APP, ids=" ".join)
def test_the_app_credential_may_change_nothing(address, app_credential, command):
    app = redis_client(address[SENTINELS[0]], PORT, app_credential[1], app_credential[0])
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.execute_command(*command)


@pytest.mark.parametrize("command", UNKNOWN_TO_SENTINEL, ids=" ".join)
def test_sentinel_has_no_config_command(address, app_credential, command):
    app = redis_client(address[SENTINELS[0]], PORT, app_credential[1], app_credential[0])
    with pytest.raises(redis.ResponseError, match="unknown command"):
        app.execute_command(*command)


def test_the_admin_may_still_change_sentinel(sentinel):
    admin = sentinel(SENTINELS[0])
    down_after = admin.sentinel_master(NAME)["down-after-milliseconds"]
    assert admin.sentinel_set(NAME, "down-after-milliseconds", down_after)


def test_the_old_shared_password_no_longer_works_for_the_app(address, app_credential, hosts):
    """The app used to log in as `default` with Sentinel's one password, now the admin's: that
    password is refused for the app, and the app host holds neither it nor the peer's."""
    admin_password = secret(SENTINEL_USERS["admin"])
    for user in (None, app_credential[0]):
        with pytest.raises(redis.AuthenticationError):
            redis_client(address[SENTINELS[0]], PORT, admin_password, user).ping()
    others = [admin_password, secret(SENTINEL_USERS["peer"])]
    assert files_holding(APP, others) == ""
    assert app_credential[1] == secret(SENTINEL_USERS["app"])


@pytest.mark.parametrize("user", list(SENTINEL_USERS))
def test_no_password_works_without_naming_its_user(address, user):
    with pytest.raises(redis.AuthenticationError):
        redis_client(address[SENTINELS[0]], PORT, secret(SENTINEL_USERS[user])).ping()


@pytest.mark.parametrize("host", SENTINELS)
def test_sentinels_link_to_each_other_as_the_peer_user(sentinel, host):
    admin = sentinel(host)
    links = [c for c in admin.client_list() if re.fullmatch(r"sentinel-\w+-cmd", c["name"])]
    assert sorted(c["user"] for c in links) == ["peer"] * (len(SENTINELS) - 1), links
    assert admin.sentinel_master(NAME)["num-other-sentinels"] == len(SENTINELS) - 1
    assert admin.execute_command("SENTINEL", "CKQUORUM", NAME).startswith("OK")
    peer = sentinel(host, "peer")
    for command in (("SENTINEL", "SET", "no-such-master", "quorum", "1"), ("ACL", "LIST")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            peer.execute_command(*command)


def test_users_are_in_sentinels_file_hashed_and_survive_a_restart(hosts, sentinel, address):
    host = SENTINELS[-1]
    platform = platforms()[host]
    conf = hosts[host].file(platform["sentinel_conf"]).content_string
    assert re.search(r"^user app on .*#[0-9a-f]{64}", conf, re.MULTILINE), "no hashed app user"
    clear = [secret(SENTINEL_USERS["admin"]), secret(SENTINEL_USERS["app"])]
    assert files_holding(host, clear) == ""

    assert hosts[host].run(f"systemctl restart {platform['sentinel_unit']}.service").rc == 0
    assert wait_for(lambda: _answers(sentinel(host)), timeout=30), "Sentinel did not come back"
    assert sorted(sentinel(host).acl_users()) == ["admin", "app", "default", "peer"]

    def quorum() -> bool:
        try:
            return sentinel(host).execute_command("SENTINEL", "CKQUORUM", NAME).startswith("OK")
        except redis.RedisError:
            return False

    # The other Sentinels log in again as the peer user, the restarted one knows them again.
    assert wait_for(quorum, timeout=30)
    app = redis_client(address[host], PORT, secret(SENTINEL_USERS["app"]), "app")
    assert NAME in app.sentinel_masters()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        time.sleep(0.5)
        return False
