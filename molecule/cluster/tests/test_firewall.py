"""The optional firewall (roles/firewall), on in this scenario.

The inventory's hosts reach each other's Redis, Sentinel and app ports. A container that is not in
the inventory, started on the same podman network from the same image, has its connections to
those ports dropped, while it still reaches a port the firewall does not guard on the same host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import group
from shared.helpers import wait_for

REDIS = group("redis")
SENTINELS = group("redis_sentinel")
APP = group("cache_app")[0]
GUARDED = [(h, 6379) for h in REDIS] + [(h, 26379) for h in SENTINELS] + [(APP, 5000)]
# A port no role of the project uses, so the firewall leaves it open.
UNGUARDED_PORT = 18080
UNIT = "redis-cache-firewall.service"
TABLE = "redis_cache_stack"

# Connects to every host:port given, all at once, and prints how each attempt ended. A dropped
# SYN ends in "timeout" (2 s), a closed port in "refused".
PROBE = """
import concurrent.futures, json, socket, sys

def attempt(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return "open"
    except TimeoutError:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as error:
        return type(error).__name__

with concurrent.futures.ThreadPoolExecutor(16) as pool:
    print(json.dumps(dict(zip(sys.argv[1:], pool.map(attempt, sys.argv[1:])))))
"""


def target(address: dict[str, str], name: str, port: int) -> str:
    return f"{address[name]}:{port}"


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Podman as the Makefile runs it: with lab/containers.conf (runtime, ulimits)."""
    project = os.environ.get("MOLECULE_PROJECT_DIRECTORY", str(Path(__file__).parents[3]))
    env = {"CONTAINERS_CONF": str(Path(project, "lab", "containers.conf")), **os.environ}
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def listener(hosts):
    """A TCP listener on the first Redis host's unguarded port, for the time of this module."""
    host = hosts[REDIS[0]]
    unit = "firewall-test-listener"
    host.run("systemctl stop %s", unit)  # left over by an interrupted run
    started = host.run(
        "systemd-run --collect --unit %s python3 -m http.server %s", unit, str(UNGUARDED_PORT)
    )
    assert started.rc == 0, started.stderr
    local = f"127.0.0.1:{UNGUARDED_PORT}"
    up = wait_for(lambda: '"open"' in host.run("python3 -c %s %s", PROBE, local).stdout, timeout=10)
    assert up, f"nothing listens on {local} of {REDIS[0]}"
    yield UNGUARDED_PORT
    host.run("systemctl stop %s", unit)


@pytest.fixture(scope="module")
def outsider(address, listener):
    """How connections from a container outside the inventory ended, by host:port."""
    inspected = podman("inspect", REDIS[0])
    assert inspected.returncode == 0, inspected.stderr
    container = json.loads(inspected.stdout)[0]
    network = next(iter(container["NetworkSettings"]["Networks"]))
    targets = [target(address, name, port) for name, port in GUARDED]
    targets.append(target(address, REDIS[0], listener))
    image = container["ImageName"]
    run = podman("run", "--rm", "--network", network, image, "python3", "-c", PROBE, *targets)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("source", group("all"))
def test_inventory_hosts_reach_each_others_guarded_ports(hosts, address, source):
    targets = [target(address, name, port) for name, port in GUARDED]
    run = hosts[source].run("python3 -c %s " + " ".join(["%s"] * len(targets)), PROBE, *targets)
    assert run.rc == 0, run.stderr
    assert json.loads(run.stdout) == dict.fromkeys(targets, "open")


@pytest.mark.parametrize(("name", "port"), GUARDED, ids=[f"{h}:{p}" for h, p in GUARDED])
def test_a_host_outside_the_inventory_is_dropped(outsider, address, name, port):
    # "timeout", not "refused": the SYN was dropped, it never reached a closed port.
    assert outsider[target(address, name, port)] == "timeout"


def test_a_host_outside_the_inventory_still_reaches_unguarded_ports(outsider, address, listener):
    assert outsider[target(address, REDIS[0], listener)] == "open"


@pytest.mark.parametrize("name", group("all"))
def test_rules_are_loaded_now_and_at_boot(hosts, name):
    host = hosts[name]
    unit = host.service(UNIT)
    journal = host.run("journalctl -u %s --no-pager -n 50", UNIT).stdout
    assert unit.is_enabled, journal
    assert unit.systemd_properties["ActiveState"] == "active", journal
    assert "sysinit.target" in unit.systemd_properties["WantedBy"]
    table = host.run("nft list table inet %s", TABLE)
    assert table.rc == 0, table.stderr + journal
    assert "policy accept" in table.stdout
