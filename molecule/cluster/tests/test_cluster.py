"""The production example's topology: replication across hosts, the app in front, --limit."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid

import pytest
import redis

from conftest import group
from shared.helpers import platforms, runs_its_platform, wait_for

PRIMARY = group("redis_primary")[0]
REPLICAS = group("redis_replicas")
APP = group("cache_app")[0]
# inventory/production.example's cache_app_key_prefix, which its app ACL user is limited to.
PREFIX = "cache:"


@pytest.mark.parametrize("host", [PRIMARY, *REPLICAS])
def test_each_host_runs_the_server_and_version_of_its_platform(connect, host):
    """What the scenario's platform says (MOLECULE_CLUSTER_SERVER, Valkey by default) runs."""
    platform = platforms()[host]
    info = connect(host).info("server")
    matches, version = runs_its_platform(info, platform)
    assert matches, (platform["name"], version)


def test_primary_sees_both_replicas(connect):
    info = connect(PRIMARY).info("replication")
    assert info["role"] == "master"
    assert info["connected_slaves"] == len(REPLICAS)


@pytest.mark.parametrize("replica", REPLICAS)
def test_replica_follows_the_primary_by_its_inventory_address(connect, replica):
    info = connect(replica).info("replication")
    assert info["role"] == "slave"
    assert info["master_host"] == PRIMARY
    assert info["master_link_status"] == "up"


def test_key_written_on_primary_reaches_every_replica(connect):
    key = f"demo:{uuid.uuid4()}"
    connect(PRIMARY).set(key, "replicated!", ex=60)
    for replica in REPLICAS:
        client = connect(replica)
        assert wait_for(lambda c=client: c.get(key) == "replicated!", timeout=1.0), replica


def test_app_writes_to_primary_and_reads_from_a_replica(address, connect):
    key = f"k{uuid.uuid4().hex[:12]}"
    url = f"http://{address[APP]}:5000/data/{key}"

    def get() -> dict:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response) | {"x_cache": response.headers["X-Cache"]}

    assert get()["source"] == "database (slow)"
    assert connect(PRIMARY).get(PREFIX + key) == key.upper()
    reader = connect(REPLICAS[0])
    assert wait_for(lambda: reader.get(PREFIX + key) == key.upper(), timeout=1.0)
    assert get() == {"key": key, "value": key.upper(), "source": "cache", "x_cache": "HIT"}


def test_a_change_on_the_primary_reaches_every_workers_local_copy(address, connect):
    """The app reads from replicas; each worker's copy is dropped when its replica reports."""
    key = f"k{uuid.uuid4().hex[:12]}"
    base = f"http://{address[APP]}:5000"

    def get(path: str = f"/data/{key}") -> dict:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return json.load(response)

    assert get()["source"] == "database (slow)"
    assert wait_for(lambda: get()["source"] == "cache", timeout=2.0)
    for _ in range(10):  # new connections, spread over the workers: each fills its copy
        assert get()["value"] == key.upper()
    assert get("/healthz") == {"status": "ok", "local_cache": "live"}

    connect(PRIMARY).set(PREFIX + key, "CHANGED", ex=60)
    assert wait_for(lambda: get()["value"] == "CHANGED", timeout=1.0)
    assert {get()["value"] for _ in range(10)} == {"CHANGED"}


@pytest.mark.parametrize("target", [APP, REPLICAS[0]], ids=["app host", "one replica"])
def test_limit_to_one_host_touches_nothing_else(playbook, target):
    """Facts about the primary come from the inventory: nothing outside the limit is touched."""
    run = playbook("site.yml", "--limit", target)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    recap = run.stdout[run.stdout.rfind("PLAY RECAP") :]
    assert target in recap
    assert not any(name in recap for name in group("all") if name != target), recap
    assert re.search(r"changed=0\s", recap), recap


def test_app_user_is_limited_to_the_app_prefix(connect):
    app = connect(PRIMARY, user="app")
    assert app.set(f"{PREFIX}acl-check", "ok", ex=30)
    for command in (("SET", "elsewhere", "x"), ("GET", "elsewhere"), ("FLUSHALL",), ("KEYS", "*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command)
