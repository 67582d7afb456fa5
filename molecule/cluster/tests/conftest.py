"""Fixtures for the multi-host scenario: testinfra hosts by group, redis-py clients by host."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

# molecule/shared/helpers.py, shared by every scenario's checks.
from shared.helpers import ACL_USERS as USERS
from shared.helpers import SENTINEL_USERS, redis_client, run_playbook

RUNNER = AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])


def group(name: str) -> list[str]:
    return RUNNER.get_hosts(name)


@pytest.fixture(scope="session")
def hosts():
    """testinfra hosts by inventory name, through podman exec."""
    return {name: testinfra.get_host(f"podman://{name}") for name in group("all")}


@pytest.fixture(scope="session")
def address(hosts):
    return {name: host.interface("eth0").addresses[0] for name, host in hosts.items()}


def secret(name: str) -> str:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets", name).read_text().strip()


def cluster_secrets() -> list[str]:
    """Every secret the cluster's hosts hold, as the files say now (a rotation changes them)."""
    folder = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets")
    return [path.read_text().strip() for path in sorted(folder.iterdir()) if path.is_file()]


@pytest.fixture(scope="session")
def connect(address):
    def _connect(name: str, port: int = 6379, user: str = "admin") -> redis.Redis:
        return redis_client(address[name], port, secret(USERS[user]), user)

    return _connect


@pytest.fixture(scope="session")
def sentinel(address):
    """A client to a host's Sentinel as its admin user (or another of its users), with the
    password the secret files hold now (a rotation changes them)."""

    def _sentinel(name: str, user: str = "admin") -> redis.Redis:
        return redis_client(address[name], 26379, secret(SENTINEL_USERS[user]), user)

    return _sentinel


@pytest.fixture
def playbook():
    """Run a playbook of the project against this scenario's hosts."""
    return run_playbook


def current_primary(sentinel, address) -> str:
    """The inventory name of the host every Sentinel names as primary (they must agree)."""
    names = set()
    for host in group("redis"):
        ip, _port = sentinel(host).sentinel_get_master_addr_by_name("cache")
        names.add(next((h for h in group("redis") if ip in (h, address[h])), ip))
    assert len(names) == 1, f"Sentinels disagree: {names}"
    return names.pop()


@dataclass
class ClientLoop:
    """Requests a new key from the app every 50 ms, in a thread, recording what came back."""

    base: str
    results: list[tuple[float, int, str, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            key = f"loop{uuid.uuid4().hex[:12]}"
            try:
                with urllib.request.urlopen(f"{self.base}/data/{key}", timeout=10) as response:
                    self.results.append(
                        (time.monotonic(), response.status, response.headers["X-Cache"], key)
                    )
            except urllib.error.HTTPError as error:
                self.results.append((time.monotonic(), error.code, "", key))
            except OSError as error:
                self.results.append((time.monotonic(), 0, str(error), key))
            time.sleep(0.05)

    def __enter__(self) -> ClientLoop:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)
