"""Fixtures for the multi-host scenario: testinfra hosts by group, redis-py clients by host."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import redis
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

# molecule/shared/helpers.py, shared by every scenario's checks.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from helpers import redis_client, run_playbook

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


@pytest.fixture(scope="session")
def connect(address):
    password = secret("redis_password")

    def _connect(name: str, port: int = 6379) -> redis.Redis:
        return redis_client(address[name], port, password)

    return _connect


@pytest.fixture(scope="session")
def sentinel(address):
    """A client to a host's Sentinel, with Sentinel's own password."""
    password = secret("sentinel_password")

    def _sentinel(name: str) -> redis.Redis:
        return redis_client(address[name], 26379, password)

    return _sentinel


@pytest.fixture
def playbook():
    """Run a playbook of the project against this scenario's hosts."""
    return run_playbook
