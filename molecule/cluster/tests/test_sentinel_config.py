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
from shared.helpers import platforms, recap, run_playbook, wait_for

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


def _quorum_ok(sentinel, host: str) -> bool:
    try:
        return bool(sentinel(host).execute_command("SENTINEL", "CKQUORUM", NAME))
    except redis.RedisError:
        return False


def test_a_sentinel_file_in_the_shared_folder_moves_into_sentinels_own(hosts, sentinel):
    """Earlier versions of the role left Sentinel's file where Debian puts it, in the server's
    folder, which stayed the server user's. A run moves it into Sentinel's own folder, Sentinel
    stopped, one host at a time with the quorum kept; what Sentinel knew (its id, its peers) comes
    along, and the folder becomes root's."""
    for host in SENTINELS:
        names = platforms()[host]
        unit = names["sentinel_unit"]
        shared = f"{names['conf_dir']}/sentinel.conf"
        dropin = f"/etc/systemd/system/{unit}.service.d/ansible-own-folder.conf"
        # As the earlier role left the host: the folder as Debian makes it, the server user's,
        # and Debian's unit, reading the file there.
        conf_dir, owner = names["conf_dir"], f"{names['user']}:{names['group']}"
        hosts[host].run_expect(
            [0],
            f"systemctl stop {unit} && mv {names['sentinel_conf']} {shared} && rm {dropin}"
            f" && dpkg-statoverride --remove {conf_dir} && chown {owner} {conf_dir}"
            f" && chmod 2770 {conf_dir} && systemctl daemon-reload && systemctl start {unit}",
        )
        assert wait_for(lambda h=host: _quorum_ok(sentinel, h), 30), host
        assert sentinel(host).info("server")["config_file"] == shared
    peers = {h: int(sentinel(h).sentinel_master(NAME)["num-other-sentinels"]) for h in SENTINELS}
    assert all(n == len(SENTINELS) - 1 for n in peers.values()), peers
    # A Sentinel started from a new file would get a new id; the moved one keeps it.
    ids = {h: sentinel(h).execute_command("SENTINEL", "MYID") for h in SENTINELS}

    watch = QuorumWatch(sentinel)
    watch.start()
    try:
        run = run_playbook("playbooks/redis_sentinel.yml")
    finally:
        watch.stop.set()
        watch.join(10)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert {h: sentinel(h).execute_command("SENTINEL", "MYID") for h in SENTINELS} == ids
    for host in SENTINELS:
        names = platforms()[host]
        assert sentinel(host).info("server")["config_file"] == names["sentinel_conf"]
        # The server's folder is root's again once Sentinel's file is out of it.
        folder = hosts[host].file(names["conf_dir"])
        assert (folder.user, folder.mode) == ("root", 0o2750), host
        assert not hosts[host].file(f"{names['conf_dir']}/sentinel.conf").exists, host
        # Sentinel writes its own file there: the peers it knows are in it.
        conf = hosts[host].file(names["sentinel_conf"]).content_string
        assert len(re.findall(r"(?m)^sentinel known-sentinel ", conf)) == len(SENTINELS) - 1, host
    assert min(answering for answering, _ in watch.samples) >= len(SENTINELS) - 1, watch.samples
    assert all(quorum for _, quorum in watch.samples), watch.samples


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
