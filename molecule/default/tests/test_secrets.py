"""No lab secret leaks: not in a -vvv converge log, a file others can read, ps, the journal."""

from __future__ import annotations

import pytest

from conftest import USERS, lab_password
from helpers import files_others_can_read_holding, leaks


@pytest.fixture(scope="module")
def secrets() -> list[str]:
    return [lab_password(name) for name in USERS.values()]


def test_converge_log_at_vvv_holds_no_secret(playbook, secrets):
    run = playbook("site.yml", "-vvv")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert leaks(run.stdout + run.stderr, secrets) == []


def test_no_file_others_can_read_holds_a_secret(host, secrets):
    # The scenario's container is named after its inventory host.
    assert files_others_can_read_holding(host.backend.host, secrets) == ""


def test_no_command_line_or_journal_holds_a_secret(host, secrets):
    assert leaks(host.run("ps -eo args").stdout, secrets) == []
    assert leaks(host.run("journalctl --no-pager -o cat").stdout, secrets) == []
