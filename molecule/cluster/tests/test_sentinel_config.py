"""Sentinel's file is Sentinel's, but the settings the role owns follow the inventory: a start-up
setting (here its bind) that changes is reported by --check, then put right by restarting one
Sentinel at a time, the quorum kept throughout."""

from __future__ import annotations

import json
import re
import threading
import time

import redis

from conftest import group
from helpers import recap, run_playbook

SENTINELS = group("redis_sentinel")
NAME = "cache"
EXTRA_ADDRESS = "127.0.0.2"
WIDER_BIND = {
    "redis_sentinel_bind": [
        "127.0.0.1",
        "-::1",
        "{{ ansible_facts['default_ipv4']['address'] }}",
        EXTRA_ADDRESS,
    ]
}


def _run_ids(sentinel) -> dict[str, str]:
    return {host: sentinel(host).info("server")["run_id"] for host in SENTINELS}


def _listens_on_the_extra_address(hosts, host: str) -> bool:
    return hosts[host].socket(f"tcp://{EXTRA_ADDRESS}:26379").is_listening


class QuorumWatch(threading.Thread):
    """Every 100 ms: how many Sentinels answer, and whether one of them passes CKQUORUM."""

    def __init__(self, sentinel) -> None:
        super().__init__(daemon=True)
        self.sentinel = sentinel
        self.samples: list[tuple[int, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            answering, quorum = 0, False
            for host in SENTINELS:
                try:
                    client = self.sentinel(host)
                    client.ping()
                    answering += 1
                    client.execute_command("SENTINEL", "CKQUORUM", NAME)
                    quorum = True
                except redis.RedisError:
                    pass
            self.samples.append((answering, quorum))
            time.sleep(0.1)


def test_a_changed_start_up_setting_is_reported_then_applied_one_sentinel_at_a_time(
    hosts, sentinel
):
    extra = json.dumps(WIDER_BIND)
    before = _run_ids(sentinel)

    check = run_playbook("playbooks/redis_sentinel.yml", "--check", "--diff", "-e", extra)
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
    assert all(n != "0" for n in re.findall(r"changed=(\d+)", recap(check.stdout))), recap(
        check.stdout
    )
    # The task's label names the line, before and after (the file's diff would show a secret).
    wider = (
        r"changed: \[[^]]+\] => \(item=bind: 127\.0\.0\.1 -::1 (\S+) -> 127\.0\.0\.1 -::1 \1 "
        + re.escape(EXTRA_ADDRESS)
    )
    assert len(re.findall(wider, check.stdout)) == len(SENTINELS), check.stdout[-4000:]
    assert _run_ids(sentinel) == before, "--check restarted a Sentinel"
    assert not any(_listens_on_the_extra_address(hosts, h) for h in SENTINELS)

    watch = QuorumWatch(sentinel)
    watch.start()
    try:
        run = run_playbook("playbooks/redis_sentinel.yml", "-e", extra)
    finally:
        watch.stop.set()
        watch.join(10)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    after = _run_ids(sentinel)
    assert all(after[h] != before[h] for h in SENTINELS), (before, after)
    assert all(_listens_on_the_extra_address(hosts, h) for h in SENTINELS)
    # One Sentinel down at a time, never more, and the quorum reachable throughout.
    assert watch.samples, "the watch took no sample"
    assert min(answering for answering, _ in watch.samples) >= len(SENTINELS) - 1, watch.samples
    assert all(quorum for _, quorum in watch.samples), watch.samples

    # Back to the inventory's bind: applied the same way; the scenario's later checks
    # (test_tls.py: site.yml --check --diff changes nothing) prove it converged.
    restored = run_playbook("playbooks/redis_sentinel.yml")
    assert restored.returncode == 0, restored.stdout[-4000:] + restored.stderr[-2000:]
    assert not any(_listens_on_the_extra_address(hosts, h) for h in SENTINELS)
    assert all(sentinel(h).execute_command("SENTINEL", "CKQUORUM", NAME) for h in SENTINELS)
