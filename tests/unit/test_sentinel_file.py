"""Sentinel's start-up lines, compared with its file as Sentinel itself rewrites it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from ansible_collections.redis_cache.stack.plugins.filter.sentinel_file import (
    redis_sentinel_start_changes,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wanted(tmp_path: Path, port: int) -> dict:
    return {
        "bind": "127.0.0.1 -::1",
        "protected-mode": "yes",
        "port": port,
        "tls-port": None,
        "daemonize": "no",
        "logfile": str(tmp_path / "sentinel.log"),
        "dir": str(tmp_path),
        "sentinel deny-scripts-reconfig": "yes",
    }


@pytest.fixture
def rewritten(tmp_path: Path) -> tuple[str, dict]:
    """A file written from the wanted lines, then rewritten by a real Sentinel (FLUSHCONFIG)."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (make bootstrap installs it)")
    port = _free_port()
    wanted = _wanted(tmp_path, port)
    config = tmp_path / "sentinel.conf"
    lines = [f"{key} {value}" for key, value in wanted.items() if value is not None]
    lines.append("sentinel monitor cache 127.0.0.1 6399 2")
    config.write_text("\n".join(lines) + "\n")
    process = subprocess.Popen(["redis-server", str(config), "--sentinel"])
    try:
        client = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.execute_command("SENTINEL", "FLUSHCONFIG")
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(10)
    return config.read_text(), wanted


def test_a_file_sentinel_rewrote_from_the_wanted_lines_has_no_change(rewritten):
    content, wanted = rewritten
    # Sentinel quotes string values when it rewrites (logfile "..."): still the same lines.
    assert '"' in content
    assert redis_sentinel_start_changes(content, wanted) == {}


def test_each_kind_of_difference_is_named_with_both_values(rewritten):
    content, wanted = rewritten
    changed = {
        **wanted,
        "bind": "127.0.0.1 -::1 10.0.0.5",
        "port": 0,
        "tls-port": wanted["port"],
        "sentinel deny-scripts-reconfig": "no",
    }
    assert redis_sentinel_start_changes(content, changed) == {
        "bind": {"before": "127.0.0.1 -::1", "after": "127.0.0.1 -::1 10.0.0.5"},
        "port": {"before": str(wanted["port"]), "after": "0"},
        "tls-port": {"before": None, "after": str(wanted["port"])},
        "sentinel deny-scripts-reconfig": {"before": "yes", "after": "no"},
    }


def test_a_line_to_remove_is_a_change_and_the_last_line_of_a_key_counts():
    content = "port 26379\ntls-port 26379\n# port 1\nport 0\n"
    assert redis_sentinel_start_changes(content, {"port": 0, "tls-port": None}) == {
        "tls-port": {"before": "26379", "after": None}
    }


def test_only_the_wanted_lines_are_read():
    # A line of another kind that a shell-style split cannot read (an unbalanced quote in a
    # user's rules) does not stop the comparison, nor does it appear anywhere.
    content = 'user app on #ab "unbalanced\nport 0\nsentinel monitor cache 10.0.0.1 6379 2\n'
    assert redis_sentinel_start_changes(content, {"port": 0}) == {}
