"""No lab secret leaks: not in a file others can read, ps, the journal. site.yml's -vvv log is
scanned by test_converge.py; the other playbooks' by the cluster scenario."""

from __future__ import annotations

import pytest

from conftest import USERS, lab_password
from shared.helpers import files_others_can_read_holding, leaks


@pytest.fixture(scope="module")
def secrets() -> list[str]:
    return [lab_password(name) for name in USERS.values()]


def test_no_file_others_can_read_holds_a_secret(host, secrets):
    # The scenario's container is named after its inventory host.
    assert files_others_can_read_holding(host.backend.host, secrets) == ""


def test_no_command_line_or_journal_holds_a_secret(host, secrets):
    assert leaks(host.run("ps -eo args").stdout, secrets) == []
    assert leaks(host.run("journalctl --no-pager -o cat").stdout, secrets) == []
