"""Converge, don't replay: a run that stopped half way is finished by the next one.

A stopped run leaves files written and not applied. Each case is set up as such a run leaves it,
then one site.yml run must bring the running state in line, though it writes nothing new. The
same runs show that an ACL change applies without a restart and that a rule the server refuses
changes nothing; they run once against every platform's host (each is a whole site.yml run).
"""

from __future__ import annotations

import json
import re

import pytest
import redis

from conftest import DEFAULT_RULES, USERS, lab_password
from shared.helpers import leaks, platforms, recap, wait_for

PRIMARY, REPLICA = 6379, 6380
APP_UNIT = "cache-app.service"


def test_a_run_stopped_half_way_is_finished_by_the_next(lab, connect_on, playbook):
    """On every platform at once: one run to finish, one more that changes nothing."""
    names = platforms()
    run_ids = {
        (host, port): connect_on(host, port).info("server")["run_id"]
        for host in lab
        for port in (PRIMARY, REPLICA)
    }
    app_pids = {host: lab[host].service(APP_UNIT).systemd_properties["MainPID"] for host in lab}
    for host, target in lab.items():
        conf_dir, server = names[host]["conf_dir"], names[host]["server"]
        # 1. The users file holds new rules (app without +ttl) that the server never loaded.
        assert target.run(f"sed -i '/^user app /s/ +ttl / /' {conf_dir}/users.acl").rc == 0
        assert connect_on(host, PRIMARY, user="app").ttl("anything") == -2  # old rules still run
        # 2. The replica runs with other replication credentials than its file, its link down.
        replica = connect_on(host, REPLICA)
        replica.config_set("masterauth", "not-the-replication-password")
        replica.execute_command("CLIENT", "KILL", "TYPE", "master")
        assert wait_for(lambda r=replica: r.info("replication")["master_link_status"] == "down", 10)
        # 3. The replica's file, and 4. the app's password file, are newer than their processes.
        replica_conf = f"{conf_dir}/{server}-slave.conf"
        assert target.run(f"touch {replica_conf} /etc/cache-app/redis-password").rc == 0

    stricter = DEFAULT_RULES | {"app": DEFAULT_RULES["app"].replace(" +ttl ", " ")}
    try:
        run = playbook("site.yml", "-e", json.dumps({"redis_acl_rules": stricter}))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        for host in lab:
            for port in (PRIMARY, REPLICA):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    connect_on(host, port, user="app").ttl("anything")
            replica = connect_on(host, REPLICA)
            up = wait_for(lambda r=replica: r.info("replication")["master_link_status"] == "up", 30)
            assert up, host
            # The ACL change applied without a restart; the replica restarted for its newer file.
            assert connect_on(host, PRIMARY).info("server")["run_id"] == run_ids[host, PRIMARY]
            assert connect_on(host, REPLICA).info("server")["run_id"] != run_ids[host, REPLICA]
            assert lab[host].service(APP_UNIT).systemd_properties["MainPID"] != app_pids[host]
        _a_refused_rule_changes_nothing(lab, connect_on, playbook, stricter)
    finally:
        restored = playbook("site.yml")
    assert restored.returncode == 0, restored.stdout[-3000:]
    for host in lab:
        assert connect_on(host, PRIMARY, user="app").ttl("anything") == -2
    # Nothing is left to apply: no restart goes on forever, on any platform. At -vvv: the
    # scenario's scan of site.yml's log for secrets (test_secrets.py covers the hosts).
    again = playbook("site.yml", "-vvv")
    assert again.returncode == 0, recap(again.stdout)
    for host in lab:
        line = rf"^{host}\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0\s"
        assert re.search(line, recap(again.stdout), re.M), recap(again.stdout)
    assert leaks(again.stdout + again.stderr, [lab_password(u) for u in USERS.values()]) == []


def _a_refused_rule_changes_nothing(lab, connect_on, playbook, rules):
    """A rule the role's check lets through but the server refuses, in a run that would also
    restart the instances: refused before the file is written, nothing restarts, and the message
    names the word by position (it may be a pasted password), never the word."""
    users_files = {host: f"{platforms()[host]['conf_dir']}/users.acl" for host in lab}

    def run_ids() -> dict:
        ports = (PRIMARY, REPLICA)
        return {(h, p): connect_on(h, p).info("server")["run_id"] for h in lab for p in ports}

    started = run_ids()
    before = {host: lab[host].file(path).sha256sum for host, path in users_files.items()}
    bad = rules | {"app": "+get +nosuchcommand"}
    change = {"redis_acl_rules": bad, "redis_extra_config": {"hz": 11}}
    refused = playbook("site.yml", "-e", json.dumps(change))
    assert refused.returncode != 0
    output = refused.stdout + refused.stderr
    assert "redis_acl_rules.app: word 2 of 2 is refused by this server" in output, output[-3000:]
    for host in lab:  # every platform's server refused it
        assert f"fatal: [{host}]: FAILED!" in output, output[-3000:]
    assert "nosuchcommand" not in output
    assert {host: lab[host].file(path).sha256sum for host, path in users_files.items()} == before
    assert run_ids() == started
    for host in lab:
        with pytest.raises(redis.exceptions.NoPermissionError):
            connect_on(host, PRIMARY, user="app").ttl("anything")
        assert connect_on(host, PRIMARY, user="app").ping()
