"""No secret of the cluster leaks, on any host: -vvv converge log, readable files, ps, journal."""

from __future__ import annotations

import pytest

from conftest import cluster_secrets, group
from helpers import files_others_can_read_holding, leaks


@pytest.fixture(scope="module")
def secrets() -> list[str]:
    return cluster_secrets()


def test_converge_log_at_vvv_holds_no_secret(playbook, secrets):
    run = playbook("site.yml", "-vvv")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert leaks(run.stdout + run.stderr, secrets) == []


@pytest.mark.parametrize("name", group("all"))
def test_no_host_leaks_a_secret(hosts, name, secrets):
    host = hosts[name]
    assert files_others_can_read_holding(name, secrets) == ""
    assert leaks(host.run("ps -eo args").stdout, secrets) == []
    assert leaks(host.run("journalctl --no-pager -o cat").stdout, secrets) == []
