"""Fixtures shared by the scenario's testinfra checks.

Redis is reached with redis-py from the controller at the container's address, so the password
never appears on any command line, neither here nor on the host.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

# molecule/shared/helpers.py, shared by every scenario's checks.
from shared.helpers import ACL_USERS as USERS
from shared.helpers import platforms, redis_client, run_playbook

# The redis role's default ACL rules, which the lab keeps (its app user is not narrowed).
DEFAULT_RULES = {
    "admin": "~* &* +@all",
    "replication": "+psync +replconf +ping",
    "sentinel": (
        "&__sentinel__:hello +multi +slaveof +ping +exec +subscribe +config|rewrite +role "
        "+publish +info +client|setname +client|kill +script|kill"
    ),
    "app": (
        "~* &__redis__:invalidate +get +set +del +ttl +pttl +ping +fcall +pexpire "
        "+client|id +client|tracking +subscribe"
    ),
}


# One host per platform, each with the seed's whole layout (molecule.yml).
LAB_HOSTS = AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("redis")
assert sorted(LAB_HOSTS) == [
    "debian12-redis",
    "debian12-valkey",
    "debian13-redis",
    "debian13-valkey",
], LAB_HOSTS


def lab_password(name: str = "redis_password") -> str:
    secrets = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "lab" / "secrets"
    return (secrets / name).read_text().strip()


@pytest.fixture(scope="module")
def platform(host) -> dict:
    """The redis role's names on this host (unit, conf_dir, user...): redis_platform."""
    return platforms()[host.backend.get_hostname()]


@pytest.fixture(scope="session")
def lab() -> dict:
    """Every host of the scenario by name, through podman exec: for checks that run a playbook
    once against all of them and then look at each."""
    return {name: testinfra.get_host(f"podman://{name}") for name in LAB_HOSTS}


@pytest.fixture(scope="session")
def connect_on(lab):
    """connect_on(host, port, password, user): a client of that host's server, from here."""
    addresses: dict[str, str] = {}

    def _connect(
        name: str, port: int, password: str | None = "lab", user: str = "admin"
    ) -> redis.Redis:
        """As `user` (the admin by default); password None connects without credentials."""
        if name not in addresses:
            addresses[name] = lab[name].interface("eth0").addresses[0]
        if password == "lab":
            password = lab_password(USERS[user])
        # No retries: a refused login fails at once, and checks that wait do so explicitly.
        return redis_client(addresses[name], port, password, user if password else None, retries=0)

    return _connect


@pytest.fixture(scope="module")
def address(host) -> str:
    return host.interface("eth0").addresses[0]


@pytest.fixture(scope="module")
def connect(host, connect_on):
    """connect(port, password, user) on the test's host."""

    def _connect(port: int, password: str | None = "lab", user: str = "admin") -> redis.Redis:
        return connect_on(host.backend.get_hostname(), port, password, user)

    return _connect


@pytest.fixture
def journal(host):
    """Return the recent journal of a unit, for assertion messages."""

    def _journal(unit: str) -> str:
        return host.run(f"journalctl --no-pager -n 40 -u {unit}").stdout

    return _journal


@pytest.fixture
def playbook():
    """Run a playbook of the project against this scenario's hosts."""
    return run_playbook
