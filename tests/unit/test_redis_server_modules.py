"""The redis role's server modules (redis_acl, redis_runtime) against a real redis-server on
loopback, run by Ansible."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from module_runs import run_module_task

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = secrets.token_urlsafe(24)
APP_HASH_OF = "app-user-password-0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _users(app_rules: str) -> str:
    digest = _digest
    return (
        "user default off resetkeys resetchannels -@all\n"
        f"user admin on #{digest(ADMIN_PASSWORD)} resetkeys resetchannels -@all ~* &* +@all\n"
        f"user app on #{digest(APP_HASH_OF)} resetkeys resetchannels -@all {app_rules}\n"
    )


@pytest.fixture
def server(tmp_path: Path, python: str):
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (make bootstrap installs it)")
    acl = tmp_path / "users.acl"
    acl.write_text(_users("~cache:* +get"))
    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert process.stdin is not None
    process.stdin.write(
        f'port {port}\nbind 127.0.0.1\nsave ""\ndir {tmp_path}\naclfile {acl}\n'
        "enable-debug-command yes\n"
    )
    process.stdin.close()
    client = redis.Redis(
        port=port, username="admin", password=ADMIN_PASSWORD, decode_responses=True
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield port, acl, client
    process.terminate()
    process.wait(10)


def app_line(client: redis.Redis) -> str:
    return next(line for line in client.acl_list() if line.startswith("user app "))


def run_module(
    python: str, port: int, check: bool = False, module: str = "redis_acl", **args
) -> dict:
    """One task of the module on localhost, as the role runs it; its JSON result."""
    module_args = {
        "login_port": port,
        "login_user": "admin",
        "login_password": ADMIN_PASSWORD,
        "wait": 3,
        **args,
    }
    return run_module_task(python, module, module_args, check=check)[0]


def test_an_unknown_command_is_refused_by_position_without_echoing_it(python, server):
    port, _acl, _client = server
    result = run_module(python, port, state="validated", rules={"app": "~cache:* +get +gett +set"})
    assert result["failed"]
    assert "redis_acl_rules.app: word 3 of 4" in result["msg"]
    assert "gett" not in result["msg"]


def test_valid_rules_pass_and_leave_no_scratch_user(python, server):
    port, _acl, client = server
    result = run_module(python, port, state="validated", rules={"app": "~cache:* +get +fcall"})
    assert not result.get("failed"), result
    assert sorted(client.acl_users()) == ["admin", "app", "default"]


def test_a_file_written_but_never_loaded_is_loaded_by_the_next_run(python, server):
    port, acl, client = server
    # A run that stopped after writing the file: the running users are the old ones.
    acl.write_text(_users("~cache:* +get +set"))
    assert run_module(python, port, check=True, state="loaded", path=str(acl))["changed"]
    assert app_line(client).endswith("-@all +get")
    result = run_module(python, port, state="loaded", path=str(acl))
    assert result["changed"], result
    assert {"+get", "+set"} <= set(app_line(client).split())
    again = run_module(python, port, state="loaded", path=str(acl))
    assert not again["changed"], again


def test_a_user_added_at_runtime_is_removed(python, server):
    port, acl, client = server
    client.acl_setuser("intruder", enabled=True, nopass=True, commands=["+@all"])
    assert run_module(python, port, state="loaded", path=str(acl))["changed"]
    assert "intruder" not in client.acl_users()


def test_a_stopped_unit_is_not_running_but_a_refused_port_of_a_running_unit_fails(python, server):
    _port, acl, _client = server
    free = _free_port()
    # No such unit on this machine: systemctl says it is not active.
    stopped = run_module(python, free, state="loaded", path=str(acl), unit="redis-server@nothing")
    assert stopped == {**stopped, "changed": False, "running": False}
    # Without a unit to ask, a refused connection is not taken for "stopped": it fails.
    refused = run_module(python, free, state="loaded", path=str(acl))
    assert refused["failed"]
    assert "no answer after 3 s" in refused["msg"]


def test_a_hung_server_is_waited_on_then_fails_not_skipped(python, server):
    port, acl, client = server
    # A server that does not answer (as one loading a large dataset, or stopped with SIGSTOP).

    def hang() -> None:
        # Its answer is not what is tested; if the server stops first (the fixture's end, on a
        # loaded machine), redis-py's reconnect is refused: nothing to report from this thread.
        with contextlib.suppress(redis.RedisError):
            client.execute_command("DEBUG", "SLEEP", "10")

    sleeper = threading.Thread(target=hang)
    sleeper.start()
    try:
        time.sleep(0.3)
        result = run_module(python, port, state="loaded", path=str(acl))
        assert result["failed"], result
        assert "no answer after 3 s" in result["msg"]
    finally:
        sleeper.join(15)


def test_checked_says_which_candidate_passwords_each_user_logs_in_with(python, server):
    port, _acl, _client = server
    logins = {"app": ["wrong-password-0123456789", APP_HASH_OF], "nobody": [APP_HASH_OF]}
    result = run_module(python, port, state="checked", logins=logins)
    assert result["accepted"] == {"app": [False, True], "nobody": [False]}
    assert APP_HASH_OF not in json.dumps(result)


def test_a_plain_server_where_tls_is_wanted_waits_for_its_restart(python, server):
    # The package's first start, or TLS turned on for a running instance: the port speaks plain
    # RESP until the restart that reads the new files. That is "not yet configured", found
    # without a login in clear, not a minute of TLS timeouts ending in a failed task.
    port, acl, _client = server
    started = time.monotonic()
    result = run_module(python, port, state="loaded", path=str(acl), tls=True, wait=30)
    assert not result.get("failed"), result.get("msg")
    assert result["state"] == "unconfigured"
    assert "without TLS" in result["msg"]
    assert time.monotonic() - started < 25


def test_narrowed_rules_keep_connections_and_a_removed_password_closes_them(python, server):
    """A stricter rule applies to open connections at once, without closing them; a password the
    file no longer has (a rotation's last step) closes the connections of its user."""
    port, acl, client = server
    app = redis.Redis(port=port, username="app", password=APP_HASH_OF, decode_responses=True)
    assert app.get("cache:x") is None

    def app_connections() -> list[str]:
        return [c["id"] for c in client.client_list() if c["user"] == "app"]

    (app_id,) = app_connections()
    acl.write_text(_users("~cache:*"))
    result = run_module(python, port, state="loaded", path=str(acl))
    assert result["changed"], result
    assert result["closed"] == []
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.get("cache:x")
    assert app_connections() == [app_id]  # the same connection, still open

    new_password = "app-user-new-password-0123456789"
    acl.write_text(_users("~cache:* +get").replace(_digest(APP_HASH_OF), _digest(new_password)))
    result = run_module(python, port, state="loaded", path=str(acl))
    assert result["closed"] == ["app"], result
    assert app_connections() == []
    assert redis.Redis(port=port, username="app", password=new_password).get("cache:x") is None


def test_a_flag_no_rule_clears_is_put_right_by_making_the_user_anew(python, server):
    port, acl, client = server
    client.execute_command("ACL", "SETUSER", "app", "skip-sanitize-payload")
    result = run_module(python, port, state="loaded", path=str(acl))
    assert result["changed"], result
    assert "skip-sanitize-payload" not in app_line(client)
    assert not run_module(python, port, state="loaded", path=str(acl))["changed"]


LIBRARY = "#!lua name=probe\nredis.register_function('probe', function() return 1 end)\n"


def test_runtime_brings_users_credentials_and_functions_in_line_once(python, server, tmp_path):
    port, acl, client = server
    acl.write_text(_users("~cache:* +get +set"))
    # A password that reads like a memory size is set as written, not as a number of bytes.
    wanted = {"masteruser": "replication", "masterauth": "00001234567890123456kb"}
    args = {
        "module": "redis_runtime",
        "acl_file": str(acl),
        "config": {"masteruser": "replication"},
    }
    args["secret_config"] = {"masterauth": wanted["masterauth"]}
    args["libraries"] = [LIBRARY]

    planned = run_module(python, port, check=True, **args)
    assert planned["changed"], planned
    assert (planned["users"], planned["config"], planned["loaded"]) == (
        ["app"],
        ["masterauth", "masteruser"],
        ["probe"],
    )
    assert client.config_get("masterauth")["masterauth"] == ""
    assert app_line(client).endswith("-@all +get")

    applied = run_module(python, port, **args)
    assert applied["changed"], applied
    assert (applied["state"], applied["role"], applied["restart"]) == ("running", "master", False)
    assert client.config_get("masterauth")["masterauth"] == "00001234567890123456kb"
    assert client.config_get("masteruser")["masteruser"] == "replication"
    assert {"+get", "+set"} <= set(app_line(client).split())
    assert client.fcall("probe", 0) == 1
    assert wanted["masterauth"] not in json.dumps(applied)

    again = run_module(python, port, **args)
    assert not again["changed"], again


def test_runtime_says_an_instance_runs_with_older_files(python, server, tmp_path):
    port, _acl, _client = server
    pidfile, conf = tmp_path / "server.pid", tmp_path / "server.conf"
    pidfile.write_text("1\n")
    conf.write_text("# read at start\n")
    started = time.time() - 100
    os.utime(pidfile, (started, started))
    os.utime(conf, (started - 10, started - 10))
    args = {"module": "redis_runtime", "pidfile": str(pidfile)}
    # A file that is missing (TLS off) counts as never changed.
    args["start_files"] = [str(conf), str(tmp_path / "missing.crt")]
    before = run_module(python, port, **args)
    assert (before["changed"], before["restart"]) == (False, False), before
    assert before["started"] == pytest.approx(started, abs=0.01)
    os.utime(conf, (started + 1, started + 1))
    assert run_module(python, port, **args)["restart"]


def test_runtime_refusing_a_users_file_says_so_and_changes_no_user(python, server):
    port, acl, client = server
    before = client.acl_list()
    acl.write_text(_users("~cache:* +get +nosuchcommand"))
    result = run_module(python, port, module="redis_runtime", acl_file=str(acl))
    assert result["failed"], result
    assert result["acl_refused"]
    assert "holds a user the server refuses" in result["msg"]
    assert "nosuchcommand" not in result["msg"]
    assert client.acl_list() == before
