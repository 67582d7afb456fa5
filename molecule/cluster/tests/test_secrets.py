"""No secret of the cluster leaks on any host: readable files, ps, journal. The playbooks' -vvv
logs are scanned where they run: site.yml (test_failover.py), verify.yml, rolling_restart.yml,
rotate_passwords.yml."""

from __future__ import annotations

import pytest

from conftest import cluster_secrets, group
from shared.helpers import files_others_can_read_holding, leaks


@pytest.fixture(scope="module")
def secrets() -> list[str]:
    return cluster_secrets()


@pytest.mark.parametrize("name", group("all"))
def test_no_host_leaks_a_secret(hosts, name, secrets):
    host = hosts[name]
    assert files_others_can_read_holding(name, secrets) == ""
    assert leaks(host.run("ps -eo args").stdout, secrets) == []
    assert leaks(host.run("journalctl --no-pager -o cat").stdout, secrets) == []
