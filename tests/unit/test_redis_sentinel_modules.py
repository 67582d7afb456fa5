"""The redis_sentinel role's users and links, on real Sentinels on loopback, run by Ansible.

Each Sentinel starts from the role's own first file (templates/etc/redis/sentinel.conf.j2, rendered
with the role's defaults and vars), as a fresh host does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from module_runs import INTERPRETERS, ansible_json_env, run_module_task
from redis.sentinel import Sentinel

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "redis_sentinel"
PLATFORMS = ROOT / "roles" / "redis" / "vars" / "platforms"
BIN = Path(sys.executable).parent
NAME = "cache"
PASSWORDS = {
    "redis_sentinel_admin_password": "admin-" + secrets.token_hex(12),
    "redis_sentinel_peer_password": "peer-" + secrets.token_hex(12),
    "redis_sentinel_app_password": "app-" + secrets.token_hex(12),
    "redis_sentinel_redis_password": "redis-" + secrets.token_hex(12),
}
ADMIN = PASSWORDS["redis_sentinel_admin_password"]
PEER = PASSWORDS["redis_sentinel_peer_password"]
APP = PASSWORDS["redis_sentinel_app_password"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(predicate, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except redis.RedisError:
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


# The long multi-step cases run under Debian's redis-py only, as the hosts run the modules;
# every reply they parse is also parsed by a case run under both.
HOST_ONLY = pytest.mark.parametrize("python", INTERPRETERS[1:], ids=["debian"])


def run_module(
    python: str, module: str, port: int, *, check: bool = False, **args
) -> tuple[dict, str]:
    """One task of the module on localhost, run by `python` as the role runs it on a host: its
    result and the raw output."""
    module_args = {"login_port": port, "login_user": "admin", "login_password": ADMIN, **args}
    return run_module_task(python, module, module_args, check=check, diff=check)


def role_users(**passwords) -> list[dict]:
    """The role's _redis_sentinel_acl_users, rendered by Ansible with these passwords."""
    return json.loads(_rendered_users(json.dumps(passwords, sort_keys=True)))


@functools.cache
def _rendered_users(passwords: str) -> str:
    task = {"ansible.builtin.debug": {"msg": "{{ _redis_sentinel_acl_users | to_json }}"}}
    return _run_with_role(json.loads(passwords), task)["msg"]


# Ports the file is rendered with once per set of overrides, then replaced on their two lines.
SENTINEL_PORT_MARK, PRIMARY_PORT_MARK = 1, 2


def first_file(dest: Path, port: int, primary_port: int, **overrides) -> str:
    """The role's sentinel.conf for a Sentinel on `port` watching a primary on `primary_port`,
    as Ansible's template module writes it on a host; paths under `dest`'s folder."""
    local = {"dir": str(dest.parent), "pidfile": '""', "logfile": '""', "daemonize": "no"}
    lines = []
    for line in _rendered_file(json.dumps(overrides, sort_keys=True)).splitlines():
        words = line.split()
        if words[:2] == ["port", str(SENTINEL_PORT_MARK)]:
            line = f"port {port}"
        elif words[:2] == ["sentinel", "monitor"] and words[4] == str(PRIMARY_PORT_MARK):
            line = " ".join([*words[:4], str(primary_port), *words[5:]])
        elif words and words[0] in local:
            line = f"{words[0]} {local[words[0]]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@functools.cache
def _rendered_file(overrides: str) -> str:
    """The role's template rendered by Ansible's template module, with the port marks."""
    with tempfile.TemporaryDirectory() as work:
        dest = Path(work) / "sentinel.conf"
        _render(dest, SENTINEL_PORT_MARK, PRIMARY_PORT_MARK, **json.loads(overrides))
        return dest.read_text()


def _render(dest: Path, port: int, primary_port: int, **overrides) -> None:
    task = {
        "ansible.builtin.template": {
            "src": str(ROLE / "templates/etc/redis/sentinel.conf.j2"),
            "dest": str(dest),
            "mode": "0600",
        }
    }
    settings = {
        "redis_sentinel_port": port,
        "redis_sentinel_bind": ["127.0.0.1"],
        "redis_sentinel_primary_port": primary_port,
        "redis_sentinel_quorum": 2,
        "redis_sentinel_down_after_ms": 1000,
        "redis_sentinel_failover_timeout_ms": 5000,
        "redis_address": "127.0.0.1",
        "redis_tls": False,
    }
    _run_with_role({**settings, **overrides}, task)


def _run_with_role(overrides: dict, task: dict) -> dict:
    """Run one task in a play that loads the role's defaults and vars, as the role does."""
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            # The platform as the redis role's platform entry point loads it (Debian 12, Redis).
            "vars_files": [
                str(PLATFORMS / "redis.yml"),
                str(PLATFORMS / "Debian-12-redis.yml"),
                str(ROLE / "defaults/main.yml"),
                str(ROLE / "vars/main.yml"),
            ],
            "vars": {"redis_platform": "{{ _redis_server_names | combine(_redis_release_names) }}"},
            "tasks": [task],
        }
    ]
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "play.yml").write_text(yaml.safe_dump(play))
        secrets_file = Path(work) / "vars.json"
        secrets_file.touch(mode=0o600)
        secrets_file.write_text(json.dumps({**PASSWORDS, **overrides}))
        run = subprocess.run(
            [
                str(BIN / "ansible-playbook"),
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                f"ansible_python_interpreter={sys.executable}",
                "-e",
                f"@{secrets_file}",
                str(Path(work) / "play.yml"),
            ],
            env=ansible_json_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert not result.get("failed"), result.get("msg")
    return result


class Process:
    """redis-server (or a Sentinel) as a child process, from a config file it may rewrite."""

    def __init__(self, conf: Path, *args: str) -> None:
        self.conf = conf
        self.args = args
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        workdir = self.conf.parent
        self.process = subprocess.Popen(
            ["redis-server", str(self.conf), *self.args, "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process:
            self.process.send_signal(sig)
            self.process.wait(10)
            self.process = None


class Cluster:
    """A Redis primary and replica, and Sentinels started from the role's first file."""

    def __init__(self, workdir: Path, sentinels: int) -> None:
        self.workdir = workdir
        self.redis_ports = [_free_port(), _free_port()]
        self.ports = [_free_port() for _ in range(sentinels)]
        self.processes: list[Process] = []
        self.sentinels: dict[int, Process] = {}

    def start_redis(self) -> None:
        password = PASSWORDS["redis_sentinel_redis_password"]
        for index, port in enumerate(self.redis_ports):
            folder = self.workdir / f"redis-{port}"
            folder.mkdir()
            conf = folder / "redis.conf"
            replica = f"replicaof 127.0.0.1 {self.redis_ports[0]}\n" if index else ""
            conf.write_text(
                f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\n'
                f"user default off\nuser sentinel on >{password} +@all ~* &*\n"
                f"masteruser sentinel\nmasterauth {password}\n{replica}"
            )
            conf.chmod(0o600)
            process = Process(conf)
            process.start()
            self.processes.append(process)
        for port in self.redis_ports:
            assert _wait_for(lambda p=port: self.redis(p).ping(), 10), port

    def sentinel_conf(self, port: int) -> Path:
        folder = self.workdir / f"sentinel-{port}"
        folder.mkdir(exist_ok=True)
        return folder / "sentinel.conf"

    def start_sentinel(self, port: int, text: str) -> None:
        conf = self.sentinel_conf(port)
        conf.write_text(text)
        process = Process(conf, "--sentinel")
        process.start()
        self.sentinels[port] = process
        self.processes.append(process)
        assert _wait_for(lambda: self.answers(port), 10), f"Sentinel {port} did not start"

    def answers(self, port: int) -> bool:
        try:
            redis.Redis(port=port, protocol=2, socket_timeout=2).ping()
        except redis.AuthenticationError:  # NOAUTH: it is up
            return True
        except redis.ConnectionError:
            return False
        return True

    def redis(self, port: int) -> redis.Redis:
        password = PASSWORDS["redis_sentinel_redis_password"]
        return redis.Redis(port=port, username="sentinel", password=password, socket_timeout=2)

    def client(self, port: int, user: str | None, password: str) -> redis.Redis:
        return redis.Redis(
            port=port, username=user, password=password, decode_responses=True, socket_timeout=2
        )

    def logs_in(self, port: int, user: str | None, password: str) -> bool:
        """Whether Sentinel takes this login (a user may be refused every command after it)."""
        try:
            self.client(port, user, password).ping()
        except redis.exceptions.NoPermissionError:
            return True
        except redis.AuthenticationError:
            return False
        return True

    def admin(self, port: int) -> redis.Redis:
        return self.client(port, "admin", ADMIN)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (make bootstrap installs it)")
    cluster = Cluster(tmp_path, sentinels=3)
    cluster.start_redis()
    yield cluster
    cluster.stop()


@pytest.fixture
def one_sentinel(cluster: Cluster) -> int:
    port = cluster.ports[0]
    text = first_file(
        cluster.sentinel_conf(port), port, cluster.redis_ports[0], redis_sentinel_quorum=1
    )
    cluster.start_sentinel(port, text)
    return port


def _sentinel_config(client: redis.Redis, key: str) -> str:
    reply = client.execute_command("SENTINEL", "CONFIG", "GET", key)
    return reply[key] if isinstance(reply, dict) else reply[1]


def _leaks(output: str) -> list[str]:
    hashes = [hashlib.sha256(p.encode()).hexdigest() for p in PASSWORDS.values()]
    return [s[:8] for s in [*PASSWORDS.values(), *hashes] if s in output]


def test_the_first_file_is_what_the_module_keeps(one_sentinel, python):
    """A fresh Sentinel from the role's file: the module finds nothing to change, in check mode
    too, and says nothing secret."""
    users = role_users()
    checked, output = run_module(
        python, "redis_sentinel_acl", one_sentinel, check=True, users=users
    )
    assert checked["changed"] is False, checked
    result, more = run_module(python, "redis_sentinel_acl", one_sentinel, users=users)
    assert result["changed"] is False, result
    assert _leaks(output + more) == []


def test_no_client_logs_in_without_naming_its_user(cluster, one_sentinel):
    for password in (ADMIN, PEER, APP):
        assert not cluster.logs_in(one_sentinel, None, password)
    assert not cluster.logs_in(one_sentinel, "app", ADMIN)


FORBIDDEN_TO_APP = [
    ("SENTINEL", "MONITOR", "evil", "127.0.0.1", "6379", "1"),
    ("SENTINEL", "REMOVE", NAME),
    ("SENTINEL", "SET", NAME, "quorum", "1"),
    ("SENTINEL", "CONFIG", "SET", "resolve-hostnames", "no"),
    ("SENTINEL", "CONFIG", "GET", "*"),
    ("SENTINEL", "FAILOVER", NAME),
    ("SENTINEL", "RESET", "*"),
    ("SENTINEL", "FLUSHCONFIG"),
    ("SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "127.0.0.1", "6379", "0", "*"),
    ("ACL", "SETUSER", "app", "+@all"),
    ("ACL", "LIST"),
    ("SHUTDOWN",),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("PUBLISH", "__sentinel__:hello", "x"),
]


def test_the_app_user_finds_the_primary_and_replicas_and_nothing_else(cluster, one_sentinel):
    sentinel = Sentinel(
        [("127.0.0.1", one_sentinel)], sentinel_kwargs={"username": "app", "password": APP}
    )
    assert sentinel.discover_master(NAME) == ("127.0.0.1", cluster.redis_ports[0])
    assert _wait_for(lambda: sentinel.discover_slaves(NAME), 15) == [
        ("127.0.0.1", cluster.redis_ports[1])
    ]
    app = cluster.client(one_sentinel, "app", APP)
    for command in FORBIDDEN_TO_APP:
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command)


def test_the_peer_user_links_the_sentinels_and_a_killed_primary_fails_over(cluster):
    for port in cluster.ports:
        cluster.start_sentinel(
            port, first_file(cluster.sentinel_conf(port), port, cluster.redis_ports[0])
        )

    def linked() -> bool:
        return all(
            int(cluster.admin(p).sentinel_master(NAME)["num-other-sentinels"]) == 2
            and cluster.admin(p).execute_command("SENTINEL", "CKQUORUM", NAME).startswith("OK")
            for p in cluster.ports
        )

    assert _wait_for(linked, 20), "the Sentinels did not find each other"
    for port in cluster.ports:
        names = [c for c in cluster.admin(port).client_list() if c["name"].endswith("-cmd")]
        assert {c["user"] for c in names} == {"peer"}, names
    # What the role's restart waits for: every peer answering on its link.
    view, _ = run_module(INTERPRETERS[1], "redis_sentinel", cluster.ports[0], name=NAME)
    assert (view["sentinels"], view["linked_sentinels"]) == (2, 2), view
    cluster.sentinels[cluster.ports[2]].stop(signal.SIGKILL)
    # A peer that stopped answering is no longer linked, though still listed.
    assert _wait_for(
        lambda: (
            run_module(INTERPRETERS[1], "redis_sentinel", cluster.ports[0], name=NAME)[0][
                "linked_sentinels"
            ]
            == 1
        ),
        15,
    )
    cluster.processes[0].stop(signal.SIGKILL)  # the primary, no shutdown

    def promoted() -> bool:
        return all(
            int(cluster.admin(p).sentinel_get_master_addr_by_name(NAME)[1])
            == cluster.redis_ports[1]
            for p in cluster.ports[:2]
        )

    assert _wait_for(promoted, 20), "no failover: the Sentinels could not agree"
    # Nothing a Sentinel sent another was refused.
    assert [cluster.admin(p).acl_log() for p in cluster.ports[:2]] == [[], []]


def test_a_new_password_is_applied_written_and_reported_once(cluster, one_sentinel, python):
    new = "app-new-" + secrets.token_hex(12)
    users = role_users(redis_sentinel_app_password=new)
    checked, _ = run_module(python, "redis_sentinel_acl", one_sentinel, check=True, users=users)
    assert (checked["changed"], checked["users_changed"]) == (True, ["app"]), checked
    assert cluster.logs_in(one_sentinel, "app", APP)  # check mode changed nothing

    result, output = run_module(python, "redis_sentinel_acl", one_sentinel, users=users)
    assert (result["changed"], result["users_changed"]) == (True, ["app"]), result
    assert _leaks(output) == []
    assert "password(s)" in json.dumps(result["diff"])
    again, _ = run_module(python, "redis_sentinel_acl", one_sentinel, users=users)
    assert again["changed"] is False, again

    conf = cluster.sentinels[one_sentinel].conf.read_text()
    assert hashlib.sha256(new.encode()).hexdigest() in conf
    assert new not in conf
    # Written to Sentinel's file: it survives a restart.
    cluster.sentinels[one_sentinel].stop()
    cluster.sentinels[one_sentinel].start()
    assert _wait_for(lambda: cluster.logs_in(one_sentinel, "app", new), 10)
    assert not cluster.logs_in(one_sentinel, "app", APP)


def test_a_user_added_at_runtime_is_removed(cluster, one_sentinel, python):
    cluster.admin(one_sentinel).acl_setuser(
        "intruder", enabled=True, nopass=True, commands=["+@all"]
    )
    cluster.admin(one_sentinel).acl_setuser("app", commands=["+sentinel|set"])
    result, _ = run_module(python, "redis_sentinel_acl", one_sentinel, users=role_users())
    assert (result["users_removed"], result["users_changed"]) == (["intruder"], ["app"]), result
    assert sorted(cluster.admin(one_sentinel).acl_users()) == ["admin", "app", "default", "peer"]
    assert "intruder" not in cluster.sentinels[one_sentinel].conf.read_text()


@HOST_ONLY
def test_previous_passwords_are_checked_accepted_then_removed(cluster, one_sentinel, python):
    """The rotation's steps: check the previous passwords are in force, accept both, then only
    the new one; the admin logs in with its previous password while Sentinel knows only that."""
    new = {k: f"{k}-new-{secrets.token_hex(12)}" for k in ("admin", "peer", "app")}
    previous = {"admin": ADMIN, "peer": PEER, "app": APP}
    wrong, output = run_module(
        python, "redis_sentinel_acl", one_sentinel, expect_passwords={**previous, "app": new["app"]}
    )
    assert wrong["failed"], wrong
    assert "the given password of app is not" in wrong["msg"]
    assert _leaks(output) == []
    rotating = {
        "login_password": new["admin"],
        "login_previous_password": ADMIN,
        "users": role_users(
            redis_sentinel_admin_password=new["admin"],
            redis_sentinel_peer_password=new["peer"],
            redis_sentinel_app_password=new["app"],
            redis_sentinel_previous_passwords=previous,
        ),
    }
    ok, _ = run_module(
        python, "redis_sentinel_acl", one_sentinel, expect_passwords=previous, **rotating
    )
    assert ok["users_changed"] == ["admin", "app", "peer"], ok
    for user in previous:
        assert cluster.logs_in(one_sentinel, user, previous[user])
        assert cluster.logs_in(one_sentinel, user, new[user])

    done, _ = run_module(
        python,
        "redis_sentinel_acl",
        one_sentinel,
        login_password=new["admin"],
        users=role_users(
            redis_sentinel_admin_password=new["admin"],
            redis_sentinel_peer_password=new["peer"],
            redis_sentinel_app_password=new["app"],
        ),
    )
    assert done["users_changed"] == ["admin", "app", "peer"], done
    for user in previous:
        assert not cluster.logs_in(one_sentinel, user, previous[user])
        assert cluster.logs_in(one_sentinel, user, new[user])


@HOST_ONLY
def test_a_sentinel_from_before_its_users_gets_them(cluster, python):
    """Deployed with only `requirepass` (the admin's password now): the module logs in as
    `default`, creates the users, then turns `default` off."""
    port = cluster.ports[0]
    legacy = first_file(
        cluster.sentinel_conf(port), port, cluster.redis_ports[0], redis_sentinel_quorum=1
    )
    legacy = "\n".join(
        line for line in legacy.splitlines() if not line.startswith(("user ", "sentinel sentinel-"))
    )
    cluster.start_sentinel(port, f"{legacy}\nrequirepass {ADMIN}\n")
    assert cluster.logs_in(port, None, ADMIN)
    result, output = run_module(python, "redis_sentinel_acl", port, users=role_users())
    assert result["changed"], result.get("msg")
    assert _leaks(output) == []
    assert not cluster.logs_in(port, None, ADMIN)
    assert cluster.admin(port).ping()
    again, _ = run_module(python, "redis_sentinel_acl", port, users=role_users())
    assert again["changed"] is False, again


def test_links_between_sentinels_are_set_and_never_shown(cluster, one_sentinel, python):
    admin = cluster.admin(one_sentinel)
    admin.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-pass", "stale-" + PEER)
    args = {"name": NAME, "sentinel_user": "peer", "sentinel_pass": PEER}
    checked, output = run_module(python, "redis_sentinel", one_sentinel, check=True, **args)
    assert checked["changed"], checked
    assert checked["diff"]["after"] == {"sentinel-pass": "(changed)"}
    result, more = run_module(python, "redis_sentinel", one_sentinel, **args)
    assert result["changed"], result.get("msg")
    assert _sentinel_config(admin, "sentinel-pass") == PEER
    assert _leaks(output + more) == []
    again, _ = run_module(python, "redis_sentinel", one_sentinel, **args)
    assert again["changed"] is False, again


def test_sentinels_own_settings_are_set_at_runtime_and_reported(cluster, one_sentinel, python):
    admin = cluster.admin(one_sentinel)
    args = {"name": NAME, "global_settings": {"announce-hostnames": "yes"}}
    checked, _ = run_module(python, "redis_sentinel", one_sentinel, check=True, **args)
    assert checked["changed"], checked
    assert checked["diff"] == {
        "before": {"announce-hostnames": "no"},
        "after": {"announce-hostnames": "yes"},
    }
    assert _sentinel_config(admin, "announce-hostnames") == "no"
    result, _ = run_module(python, "redis_sentinel", one_sentinel, **args)
    assert result["changed"], result.get("msg")
    assert result["global_settings"] == {"announce-hostnames": "yes"}
    assert _sentinel_config(admin, "announce-hostnames") == "yes"
    again, _ = run_module(python, "redis_sentinel", one_sentinel, **args)
    assert again["changed"] is False, again
    wrong, _ = run_module(python, "redis_sentinel", one_sentinel, name="other")
    assert wrong["failed"]
    assert "monitors no primary named 'other'" in wrong["msg"]


@HOST_ONLY
def test_the_peer_password_rotates_in_the_playbooks_order_and_the_sentinels_stay_linked(
    cluster, python
):
    """playbooks/rotate_passwords.yml's order on three Sentinels: every one accepts both peer
    passwords, then each moves its links, then the previous one goes. With every link cut, they
    log in to each other again with the new one."""
    for port in cluster.ports:
        cluster.start_sentinel(
            port, first_file(cluster.sentinel_conf(port), port, cluster.redis_ports[0])
        )
    new = "peer-new-" + secrets.token_hex(12)
    both = role_users(
        redis_sentinel_peer_password=new, redis_sentinel_previous_passwords={"peer": PEER}
    )
    for port in cluster.ports:
        assert run_module(python, "redis_sentinel_acl", port, users=both)[0]["users_changed"] == [
            "peer"
        ]
    for port in cluster.ports:
        moved, _ = run_module(
            python, "redis_sentinel", port, name=NAME, sentinel_user="peer", sentinel_pass=new
        )
        assert moved["changed"], moved.get("msg")
    only_new = role_users(redis_sentinel_peer_password=new)
    for port in cluster.ports:
        assert run_module(python, "redis_sentinel_acl", port, users=only_new)[0][
            "users_changed"
        ] == ["peer"]
    for port in cluster.ports:
        cluster.admin(port).client_kill_filter(user="peer")
    time.sleep(3)  # past down-after-milliseconds (1 s here): a peer refused would be s_down

    def linked() -> bool:
        return all(
            int(cluster.admin(p).sentinel_master(NAME)["num-other-sentinels"]) == 2
            and not any(s["is_sdown"] for s in cluster.admin(p).sentinel_sentinels(NAME))
            and cluster.admin(p).execute_command("SENTINEL", "CKQUORUM", NAME).startswith("OK")
            for p in cluster.ports
        )

    assert _wait_for(linked, 5), [cluster.admin(p).sentinel_sentinels(NAME) for p in cluster.ports]
    assert not cluster.logs_in(cluster.ports[0], "peer", PEER)
