"""The rolling-restart playbook: refuses an unhealthy cluster, then restarts every Redis host
under a client loop with no failed answer. Runs after test_failover.py."""

from __future__ import annotations

import json

from conftest import ClientLoop, cluster_secrets, current_primary, group
from shared.helpers import leaks, platforms, wait_for

REDIS = group("redis")


def test_refuses_to_start_while_a_replica_is_down(hosts, playbook, sentinel, address):
    replica = next(h for h in REDIS if h != current_primary(sentinel, address))
    unit = platforms()[replica]["unit"]
    hosts[replica].run(f"systemctl stop {unit}.service")
    try:
        run = playbook("playbooks/rolling_restart.yml")
    finally:
        hosts[replica].run(f"systemctl start {unit}.service")
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "The cluster is not healthy" in output, output[-3000:]
    assert f"{replica}: Redis does not answer" in output, output[-3000:]
    # Nothing was restarted: the play stopped at the check.
    assert "Restart the server" not in run.stdout


def test_rolling_restart_under_load(connect, playbook, sentinel, address):
    # The host stopped above is back: by its own file, then as Sentinel's replica, in sync.
    assert wait_for(lambda: _whole(connect), timeout=90), [
        connect(h).info("replication") for h in REDIS
    ]
    before = current_primary(sentinel, address)
    run_ids = {h: connect(h).info("server")["run_id"] for h in REDIS}
    with ClientLoop(f"http://{address[group('cache_app')[0]]}:5000") as loop:
        run = playbook("playbooks/rolling_restart.yml", "-vvv")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert leaks(run.stdout + run.stderr, cluster_secrets()) == []
    statuses = [status for _, status, _, _ in loop.results]
    assert statuses, "the client loop made no request"
    assert set(statuses) == {200}, loop.results
    # Every Redis restarted, the primary moved, and the cluster is whole again.
    after = {h: connect(h).info("server")["run_id"] for h in REDIS}
    assert all(after[h] != run_ids[h] for h in REDIS), "a Redis was not restarted"
    assert current_primary(sentinel, address) != before
    assert _whole(connect)


def _whole(connect) -> bool:
    """One primary, and every replica linked to it and done syncing."""
    infos = [connect(h).info("replication") for h in REDIS]
    return sorted(i["role"] for i in infos) == ["master", "slave", "slave"] and all(
        i["master_link_status"] == "up" and not i["master_sync_in_progress"]
        for i in infos
        if i["role"] == "slave"
    )


def test_a_setting_that_needs_a_restart_goes_the_rolling_way(connect, playbook, sentinel, address):
    """A changed setting (applied with playbooks/redis.yml, the Redis part of site.yml) restarts
    replicas one at a time, fails over, then restarts the former primary: no failed answer, and
    one primary at the end."""
    assert wait_for(lambda: _whole(connect), timeout=90)
    run_ids = {h: connect(h).info("server")["run_id"] for h in REDIS}
    before = current_primary(sentinel, address)
    with ClientLoop(f"http://{address[group('cache_app')[0]]}:5000") as loop:
        run = playbook("playbooks/redis.yml", "-e", json.dumps({"redis_extra_config": {"hz": 12}}))
    try:
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        statuses = [status for _, status, _, _ in loop.results]
        assert len(statuses) > 20, "the client loop made too few requests"
        assert set(statuses) == {200}, [r for r in loop.results if r[1] != 200]
        after = {h: connect(h).info("server")["run_id"] for h in REDIS}
        assert all(after[h] != run_ids[h] for h in REDIS), "a Redis was not restarted"
        # Every one restarted on the new setting: the former primary too, whose file a failover's
        # CONFIG REWRITE must not have turned back.
        assert {connect(h).config_get("hz")["hz"] for h in REDIS} == {"12"}
        # The primary's host restarted after Sentinel moved the primary role away from it.
        assert current_primary(sentinel, address) != before
        assert wait_for(lambda: _whole(connect), timeout=90)
    finally:
        restored = playbook("playbooks/redis.yml")
    assert restored.returncode == 0, restored.stdout[-4000:] + restored.stderr[-2000:]
    assert wait_for(lambda: _whole(connect), timeout=90)
