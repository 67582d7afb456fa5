"""The app unit's IP allow list: the inventory's Redis and Sentinel hosts, by address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = """
redis:
  hosts:
    redis1: {redis_address: 10.0.10.11, ansible_host: 192.168.0.11}
    redis2: {ansible_host: 10.0.10.12}
    redis3: {}
redis_sentinel:
  children:
    redis:
cache_app:
  hosts:
    app:
"""
# What `getent ahosts redis3` prints, as the role's lookup task registers it.
REDIS3_LOOKUP = {
    "results": [
        {
            "item": "redis3",
            "stdout_lines": [
                "10.0.10.13      STREAM redis3",
                "10.0.10.13      DGRAM  ",
                "fd00::13        STREAM ",
            ],
        }
    ]
}


def nameservers() -> set[str]:
    """This machine's DNS servers (the facts' dns.nameservers), loopback ones left out."""
    lines = Path("/etc/resolv.conf").read_text().splitlines()
    servers = {line.split()[1].split("%")[0] for line in lines if line.startswith("nameserver ")}
    return {server for server in servers if not server.startswith("127.") and server != "::1"}


def rendered(tmp_path: Path, **extra_vars: object) -> dict:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(INVENTORY)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            json.dumps({**local, "_cache_app_peer_lookup": REDIS3_LOOKUP, **extra_vars}),
            str(ROOT / "tests/unit/playbooks/cache_app_ip_allow.yml"),
        ],
        env={
            **os.environ,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    tasks = json.loads(run.stdout)["plays"][0]["tasks"]
    return tasks[-1]["hosts"]["app"]["msg"]


def test_every_redis_and_sentinel_host_is_allowed_by_its_address(tmp_path):
    shown = rendered(tmp_path)
    # redis_address, else ansible_host, else the inventory name: the redis role's rule.
    assert shown["peers"] == ["10.0.10.11", "10.0.10.12", "redis3"]
    assert shown["names"] == ["redis3"]
    # Loopback as one symbolic entry; a name's every address; the DNS servers that resolve it.
    addresses = {"10.0.10.11", "10.0.10.12", "10.0.10.13", "fd00::13", *nameservers()}
    assert shown["allow"] == ["localhost", *sorted(addresses)]


def test_the_hosts_the_app_is_set_to_reach_are_allowed_too(tmp_path):
    shown = rendered(
        tmp_path,
        cache_app_redis_host="10.0.20.1",
        cache_app_redis_read_host="fd00::21",
        cache_app_sentinels=["10.0.20.3:26379", "[fd00::24]:26379"],
    )
    for address in ("10.0.20.1", "fd00::21", "10.0.20.3", "fd00::24"):
        assert address in shown["allow"]


def test_addresses_only_need_no_dns_server(tmp_path):
    shown = rendered(
        tmp_path,
        cache_app_redis_peers=["10.0.10.11", "fd00::12", "127.0.0.1"],
        _cache_app_peer_lookup={"results": []},
    )
    assert shown["names"] == []
    assert shown["allow"] == ["localhost", "10.0.10.11", "fd00::12"]


def test_no_peers_no_restriction(tmp_path):
    assert rendered(tmp_path, cache_app_redis_peers=[])["allow"] == []
