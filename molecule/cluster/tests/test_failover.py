"""Sentinel failover under a live app, then a re-run of site.yml. Runs after test_cluster.py."""

from __future__ import annotations

import time

import pytest
import redis

from conftest import ClientLoop, cluster_secrets, current_primary, group
from shared.helpers import (
    crash_server,
    leaks,
    platforms,
    recap,
    redis_client,
    restart_crashed_server,
    wait_for,
)

REDIS = group("redis")
APP = group("cache_app")[0]
NAME = "cache"


@pytest.fixture(scope="module")
def app_url(address) -> str:
    return f"http://{address[APP]}:5000"


def test_sentinels_agree_and_see_the_whole_cluster(sentinel, address):
    assert current_primary(sentinel, address) == group("redis_primary")[0]
    for host in REDIS:
        client = sentinel(host)
        master = client.sentinel_master(NAME)
        assert master["num-slaves"] == 2, host
        assert master["num-other-sentinels"] == 2, host
        assert client.execute_command("SENTINEL", "CKQUORUM", NAME).startswith("OK"), host


def test_sentinel_refuses_clients_without_its_password(address):
    anonymous = redis_client(address[REDIS[0]], 26379, None)
    with pytest.raises(redis.AuthenticationError):
        anonymous.sentinel_get_master_addr_by_name(NAME)


def test_replica_link_drop_is_a_partial_resync(connect, sentinel, address):
    primary = current_primary(sentinel, address)
    replica = next(h for h in REDIS if h != primary)
    before = connect(primary).info("stats")
    connect(replica).client_kill_filter(_type="master")
    assert wait_for(lambda: connect(replica).info("replication")["master_link_status"] == "up", 10)
    after = connect(primary).info("stats")
    assert after["sync_partial_ok"] == before["sync_partial_ok"] + 1
    assert after["sync_full"] == before["sync_full"]


def test_killed_primary_fails_over_and_the_app_keeps_answering(
    hosts, connect, sentinel, address, app_url
):
    old = current_primary(sentinel, address)
    with ClientLoop(app_url) as loop:
        time.sleep(1)
        # SIGKILL, no shutdown save, and systemd does not bring it back.
        assert hosts[old].run(crash_server(platforms()[old]["unit"])).rc == 0
        new = wait_for(lambda: _primary_other_than(sentinel, address, old), timeout=30)
        assert new, "no replica was promoted within 30 s"
        promoted_at = time.monotonic()
        # Keep the loop running until new keys get cached again, on the new primary.
        assert wait_for(lambda: _cached_since(loop, connect, new, promoted_at), timeout=30)
    statuses = {status for _, status, _, _ in loop.results}
    assert statuses == {200}, loop.results  # bypassed or not, every answer was a 200

    # The old primary comes back by its own file as a primary; Sentinel makes it a replica.
    assert hosts[old].run(restart_crashed_server(platforms()[old]["unit"])).rc == 0
    rejoined = wait_for(
        lambda: (
            _link(connect, old)[:2] == ("slave", "up")
            and _link(connect, old)[2] in (new, address[new])
        ),
        timeout=60,
    )
    assert rejoined, connect(old).info("replication")


def test_rerun_after_failover_changes_nothing_and_keeps_the_new_primary(
    playbook, sentinel, address
):
    before = current_primary(sentinel, address)
    assert before != group("redis_primary")[0], "runs after the failover test"
    # At -vvv, the scenario's scan of site.yml's log for secrets (test_secrets.py covers the hosts).
    run = playbook("site.yml", "-vvv")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert leaks(run.stdout + run.stderr, cluster_secrets()) == []
    summary = recap(run.stdout)
    assert "changed=0" in summary
    assert all("changed=0" in line for line in summary.splitlines() if "ok=" in line), summary
    assert current_primary(sentinel, address) == before


def test_verify_playbook_checks_the_live_topology_after_the_failover(playbook):
    run = playbook("playbooks/verify.yml", "-vvv")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert leaks(run.stdout + run.stderr, cluster_secrets()) == []
    assert "primary, SET demo:verify" in run.stdout
    assert run.stdout.count("replica in sync, GET demo:verify -> same value") == 2


def _primary_other_than(sentinel, address, old: str) -> str | None:
    try:
        name = current_primary(sentinel, address)
    except (AssertionError, OSError):
        return None
    return name if name != old else None


def _cached_since(loop: ClientLoop, connect, primary: str, since: float) -> bool:
    """A key first asked for after `since` was cached, and it is on the new primary."""
    misses = [key for at, _, cache, key in loop.results if cache == "MISS" and at > since]
    return bool(misses) and connect(primary).get(f"cache:{misses[-1]}") == misses[-1].upper()


def _link(connect, host: str) -> tuple[str, str, str]:
    try:
        info = connect(host).info("replication")
    except OSError:
        return ("", "", "")
    return (info["role"], info.get("master_link_status", ""), info.get("master_host", ""))
