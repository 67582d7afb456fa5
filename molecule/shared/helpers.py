"""Helpers shared by the scenarios' testinfra checks."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

T = TypeVar("T")


# ACL users the scenarios create, and the name of the generated secret file of each one's password.
ACL_USERS = {
    "admin": "redis_password",
    "replication": "redis_replication_password",
    "sentinel": "redis_sentinel_user_password",
    "app": "redis_app_password",
}
# Sentinel's own ACL users (roles/redis_sentinel), and the generated secret file of each password.
SENTINEL_USERS = {
    "admin": "sentinel_password",
    "peer": "sentinel_peer_password",
    "app": "sentinel_app_password",
}


@functools.cache
def platforms() -> dict[str, dict[str, Any]]:
    """Each Redis and Sentinel host's redis_platform, as the redis role loads it: the server's
    packages, units, paths and user on that host (molecule/shared/platforms.yml writes them)."""
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "platforms.json"
    run = run_playbook("molecule/shared/platforms.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return json.loads(path.read_text())


def runs_its_platform(info: dict, platform: dict) -> tuple[bool, str]:
    """Whether a server's INFO server section shows the server and version of its platform, and
    the version it reports (Valkey reports valkey_version beside a redis_version for clients)."""
    version = info.get("valkey_version") or info["redis_version"]
    same_server = ("valkey_version" in info) == (platform["server"] == "valkey")
    return same_server and version.startswith(platform["version"] + "."), version


def crash_server(unit: str) -> str:
    """A crash of `unit` that stays down: a runtime drop-in turns off Restart=always for the
    moment, then SIGKILL (no shutdown save). A `systemctl stop` right after the kill would race
    with systemd's restart and can leave the unit stuck deactivating (Debian's unit has no stop
    timeout)."""
    dropin = f"/run/systemd/system/{unit}.service.d"
    return (
        f"mkdir -p {dropin} && printf '[Service]\\nRestart=no\\n' > {dropin}/crash.conf"
        f" && systemctl daemon-reload && systemctl kill --signal=SIGKILL {unit}.service"
    )


def restart_crashed_server(unit: str) -> str:
    """Undo crash_server: Restart=always again, and the unit started."""
    return (
        f"rm -f /run/systemd/system/{unit}.service.d/crash.conf"
        f" && systemctl daemon-reload && systemctl start {unit}.service"
    )


def wait_for(predicate: Callable[[], T], timeout: float, step: float = 0.05) -> T:
    """Poll until the predicate is truthy or the timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def run_playbook(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook of the project against the scenario's hosts, over SSH as molecule does: its
    inventory folder holds the hosts' addresses beside its own file (shared/prepare.yml)."""
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"]),
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


# The scenario's CA certificate when its Redis and Sentinels speak TLS only (molecule/cluster).
TLS_CA = os.environ.get("MOLECULE_REDIS_TLS_CA") or None


def redis_client(
    host: str,
    port: int,
    password: str | None,
    username: str | None = None,
    *,
    tls: bool = TLS_CA is not None,
    ca: str | None = TLS_CA,
    retries: int | None = None,
) -> redis.Redis:
    """A client from the controller to a test host's Redis; the password never leaves Python.

    Over TLS when the scenario has it, checking the server's certificate against `ca` (None: the
    system's CAs, which did not sign it). `retries`: redis-py's own retries of a failed command or
    connection (None: its default, three with backoff, which also retries a refused login since
    an AuthenticationError is a ConnectionError: seconds per such check).
    """
    return redis.Redis(
        host=host,
        port=port,
        username=username,
        password=password,
        socket_timeout=3,
        # RESP2, as redis-cli speaks: errors read NOAUTH / WRONGPASS as in the docs.
        protocol=2,
        **({"retry": Retry(NoBackoff(), retries)} if retries is not None else {}),
        decode_responses=True,
        **({"ssl": True, "ssl_ca_certs": ca} if tls else {}),
    )


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which secrets (by position, never the value) appear in the text."""
    return [f"secret #{i}" for i, secret in enumerate(secrets) if secret in text]


def files_others_can_read_holding(container: str, secrets: list[str]) -> str:
    """Paths of files readable by others in a container that contain any of the secrets."""
    return files_holding(container, secrets, "-perm -o=r")


def files_holding(container: str, secrets: list[str], find_test: str = "") -> str:
    """Paths of files in a container (those passing `find_test`, whoever may read them) that
    contain any of the secrets.

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
        f"-type f {find_test} -size -5M -print0 | xargs -0 grep -lFf {patterns}; "
        f"rm -f {patterns}"
    )
    return subprocess.run(
        ["podman", "exec", container, "sh", "-c", scan], capture_output=True, text=True, check=False
    ).stdout.strip()
