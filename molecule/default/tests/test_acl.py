"""ACL users: each one can do its job and nothing else; changes load without a restart."""

from __future__ import annotations

import re
import uuid

import pytest
import redis

from conftest import USERS, lab_password

PRIMARY, REPLICA = 6379, 6380


def test_acl_file_holds_hashes_not_passwords(host, platform):
    acl = host.file(f"{platform['conf_dir']}/users.acl")
    assert (acl.user, acl.group, acl.mode) == (platform["user"], platform["group"], 0o640)
    content = acl.content_string
    assert "user default off" in content
    for user, secret in USERS.items():
        assert re.search(rf"^user {user} on #[0-9a-f]{{64}} ", content, re.M), user
        assert lab_password(secret) not in content


@pytest.mark.parametrize("port", [PRIMARY, REPLICA])
def test_default_user_is_off(connect, port):
    # redis-py drops the NOAUTH / WRONGPASS codes from the message it raises.
    with pytest.raises(redis.AuthenticationError, match=r"NOAUTH|Authentication required"):
        connect(port, password=None).ping()
    with pytest.raises(redis.AuthenticationError, match=r"WRONGPASS|invalid username-password"):
        connect(port, password=lab_password(), user="default").ping()


def test_wrong_password_is_logged(connect):
    admin = connect(PRIMARY)
    admin.acl_log_reset()
    with pytest.raises(redis.AuthenticationError, match=r"WRONGPASS|invalid username-password"):
        connect(PRIMARY, password="not-the-app-password-at-all", user="app").ping()
    entries = admin.acl_log()
    assert any(e["reason"] == "auth" and e["username"] == "app" for e in entries), entries


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "maxmemory"),
        ("ACL", "LIST"),
        # No Lua of its own: a loop in EVAL would block Redis for every client.
        ("EVAL", "while true do end", "0"),
        ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff831", "0"),
        ("SCRIPT", "LOAD", "return 1"),
        ("FUNCTION", "LOAD", "#!lua name=mine\nredis.register_function('f', function() end)"),
        ("FUNCTION", "DELETE", "cache_app"),
        ("SCRIPT", "KILL"),
    ],
)
def test_app_user_gets_noperm_outside_its_commands(connect, command):
    with pytest.raises(redis.exceptions.NoPermissionError):
        connect(PRIMARY, user="app").execute_command(*command)


def test_debug_is_refused_to_everyone(connect):
    """enable-debug-command no: Redis refuses DEBUG before looking at ACLs, even to the admin."""
    for user in ("app", "admin"):
        with pytest.raises(redis.ResponseError, match="DEBUG command not allowed"):
            connect(PRIMARY, user=user).execute_command("DEBUG", "SLEEP", "0")


def test_app_user_can_do_its_job(connect):
    app = connect(PRIMARY, user="app")
    key = f"acl:{uuid.uuid4().hex}"
    assert app.set(key, "v", ex=30)
    assert app.get(key) == "v"
    assert 0 < app.ttl(key) <= 30
    # Its lock: SET NX PX, then the functions the redis role loaded (FCALL).
    lock, token = f"lock|{key}", uuid.uuid4().hex
    assert app.set(lock, token, nx=True, px=5000)
    assert app.fcall("cache_app_extend", 1, lock, token, 9000) == 1
    assert app.pttl(lock) > 5000
    assert app.fcall("cache_app_unlock", 1, lock, "someone-else") == 0
    assert app.fcall("cache_app_unlock", 1, lock, token) == 1
    assert app.get(lock) is None


def test_the_lock_functions_reached_the_replica(connect):
    # RESP2: each library is a flat list of name, value pairs.
    pairs = [zip(lib[::2], lib[1::2], strict=True) for lib in connect(REPLICA).function_list()]
    libraries = [dict(pair) for pair in pairs]
    assert [library["library_name"] for library in libraries] == ["cache_app"]


def test_no_backup_of_the_users_file_keeps_old_password_hashes(host, platform):
    listing = host.run(f"ls -A {platform['conf_dir']}").stdout.split()
    assert [name for name in listing if name.startswith("users.acl")] == ["users.acl"], listing


@pytest.mark.parametrize("user", ["replication", "sentinel"])
def test_replication_and_sentinel_users_can_do_nothing_else(connect, user):
    client = connect(PRIMARY, user=user)
    assert client.ping()
    for command in (("GET", "x"), ("SET", "x", "1"), ("FLUSHALL",), ("CONFIG", "GET", "*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*command)


def test_replication_works_with_default_off(connect):
    info = connect(REPLICA).info("replication")
    assert (info["role"], info["master_link_status"]) == ("slave", "up")
