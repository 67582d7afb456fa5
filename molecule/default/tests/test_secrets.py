"""No lab secret leaks: not in a -vvv converge log, a file others can read, ps, the journal."""

from __future__ import annotations

import subprocess

import pytest

from conftest import USERS, lab_password


@pytest.fixture(scope="module")
def secrets() -> list[str]:
    return [lab_password(name) for name in USERS.values()]


def leaks(text: str, secrets: list[str]) -> list[str]:
    """Which secrets (by position, never the value) appear in the text."""
    return [f"secret #{i}" for i, secret in enumerate(secrets) if secret in text]


def test_converge_log_at_vvv_holds_no_secret(playbook, secrets):
    run = playbook("site.yml", "-vvv")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert leaks(run.stdout + run.stderr, secrets) == []


def test_no_file_others_can_read_holds_a_secret(host, secrets):
    # The patterns reach a root-only file through stdin: no secret on any command line.
    patterns = "/root/.secret-scan-patterns"
    subprocess.run(
        ["podman", "exec", "-i", host.backend.name, "sh", "-c", f"umask 077; cat > {patterns}"],
        input="\n".join(secrets) + "\n",
        text=True,
        check=True,
    )
    try:
        found = host.run(
            "find / -xdev \\( -path /proc -o -path /sys -o -path /root \\) -prune -o "
            f"-type f -perm -o=r -size -5M -print0 | xargs -0 grep -lFf {patterns} || true"
        )
    finally:
        host.run(f"rm -f {patterns}")
    assert found.stdout.strip() == ""


def test_no_command_line_or_journal_holds_a_secret(host, secrets):
    assert leaks(host.run("ps -eo args").stdout, secrets) == []
    assert leaks(host.run("journalctl --no-pager -o cat").stdout, secrets) == []
