"""Fixtures for the multi-host scenario: testinfra hosts by group, redis-py clients by host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

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


@pytest.fixture(scope="session")
def connect(address):
    password = (
        Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets", "redis_password").read_text()
    ).strip()

    def _connect(name: str, port: int = 6379) -> redis.Redis:
        return redis.Redis(
            host=address[name],
            port=port,
            password=password,
            socket_timeout=3,
            decode_responses=True,
            protocol=2,
        )

    return _connect


@pytest.fixture
def playbook():
    def _run(path: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "ansible-playbook",
                "-i",
                os.environ["MOLECULE_INVENTORY_FILE"],
                os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], path),
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        )

    return _run
