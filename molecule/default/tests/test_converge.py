"""Converge, don't replay: a run that stopped half way is finished by the next one.

A stopped run leaves files written and not applied. Each case is set up as such a run leaves it,
then one site.yml run must bring the running state in line, though it writes nothing new.
"""

from __future__ import annotations

import json

import pytest
import redis

from conftest import DEFAULT_RULES, USERS, lab_password
from helpers import leaks, recap, wait_for

PRIMARY, REPLICA = 6379, 6380
APP_UNIT = "cache-app.service"


def test_a_run_stopped_half_way_is_finished_by_the_next(host, connect, playbook, platform):
    run_ids = {port: connect(port).info("server")["run_id"] for port in (PRIMARY, REPLICA)}
    app_pid = host.service(APP_UNIT).systemd_properties["MainPID"]
    # 1. The users file holds new rules (app without +ttl) that Redis never loaded.
    conf_dir, server = platform["conf_dir"], platform["server"]
    assert host.run(f"sed -i '/^user app /s/ +ttl / /' {conf_dir}/users.acl").rc == 0
    assert connect(PRIMARY, user="app").ttl("anything") == -2  # the old rules still run
    # 2. The replica runs with other replication credentials than its file, its link down.
    replica = connect(REPLICA)
    replica.config_set("masterauth", "not-the-replication-password")
    replica.execute_command("CLIENT", "KILL", "TYPE", "master")
    assert wait_for(lambda: replica.info("replication")["master_link_status"] == "down", 10)
    # 3. The replica's file, and 4. the app's password file, are newer than their processes.
    replica_conf = f"{conf_dir}/{server}-slave.conf"
    assert host.run(f"touch {replica_conf} /etc/cache-app/redis-password").rc == 0

    stricter = DEFAULT_RULES | {"app": DEFAULT_RULES["app"].replace(" +ttl ", " ")}
    try:
        run = playbook("site.yml", "-e", json.dumps({"redis_acl_rules": stricter}))
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        for port in (PRIMARY, REPLICA):
            with pytest.raises(redis.exceptions.NoPermissionError):
                connect(port, user="app").ttl("anything")
        assert wait_for(lambda: replica.info("replication")["master_link_status"] == "up", 30)
        assert connect(PRIMARY).info("server")["run_id"] == run_ids[PRIMARY]
        assert connect(REPLICA).info("server")["run_id"] != run_ids[REPLICA]
        assert host.service(APP_UNIT).systemd_properties["MainPID"] != app_pid
    finally:
        restored = playbook("site.yml")
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert connect(PRIMARY, user="app").ttl("anything") == -2
    # Nothing is left to apply: no restart goes on forever. At -vvv: the scenario's scan of
    # site.yml's log for secrets (test_secrets.py covers the host).
    again = playbook("site.yml", "-vvv")
    assert "changed=0" in recap(again.stdout), recap(again.stdout)
    assert leaks(again.stdout + again.stderr, [lab_password(u) for u in USERS.values()]) == []
