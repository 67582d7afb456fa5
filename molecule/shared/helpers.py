"""Helpers shared by the scenarios' testinfra checks."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import redis

T = TypeVar("T")


# ACL users the scenarios create, and the name of the generated secret file of each one's password.
ACL_USERS = {
    "admin": "redis_password",
    "replication": "redis_replication_password",
    "sentinel": "redis_sentinel_user_password",
    "app": "redis_app_password",
}


def wait_for(predicate: Callable[[], T], timeout: float, step: float = 0.05) -> T:
    """Poll until the predicate is truthy or the timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def run_playbook(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook of the project against the scenario's hosts."""
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


def recap(output: str) -> str:
    """The PLAY RECAP section of ansible-playbook's output, without colours."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    return plain[plain.rfind("PLAY RECAP") :]


def redis_client(
    host: str, port: int, password: str | None, username: str | None = None
) -> redis.Redis:
    """A client from the controller to a test host's Redis; the password never leaves Python."""
    return redis.Redis(
        host=host,
        port=port,
        username=username,
        password=password,
        socket_timeout=3,
        # RESP2, as redis-cli speaks: errors read NOAUTH / WRONGPASS as in the docs.
        protocol=2,
        decode_responses=True,
    )


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which secrets (by position, never the value) appear in the text."""
    return [f"secret #{i}" for i, secret in enumerate(secrets) if secret in text]


def files_others_can_read_holding(container: str, secrets: list[str]) -> str:
    """Paths of files readable by others in a container that contain any of the secrets.

    The patterns reach a root-only file through stdin: no secret on any command line.
    """
    patterns = "/root/.secret-scan-patterns"
    subprocess.run(
        ["podman", "exec", "-i", container, "sh", "-c", f"umask 077; cat > {patterns}"],
        input="\n".join(secrets) + "\n",
        text=True,
        check=True,
    )
    scan = (
        "find / -xdev \\( -path /proc -o -path /sys -o -path /root \\) -prune -o "
        f"-type f -perm -o=r -size -5M -print0 | xargs -0 grep -lFf {patterns}; "
        f"rm -f {patterns}"
    )
    return subprocess.run(
        ["podman", "exec", container, "sh", "-c", scan], capture_output=True, text=True, check=False
    ).stdout.strip()
