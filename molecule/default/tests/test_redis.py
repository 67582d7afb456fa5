"""Behaviour of the seed's layout: primary on 6379, replica "slave" on 6380 of one host."""

from __future__ import annotations

import os
import re
import uuid

import pytest
import redis
from testinfra.utils.ansible_runner import AnsibleRunner

from conftest import LAB_HOSTS
from shared.helpers import platforms, recap, runs_its_platform, wait_for

# podman exec straight into the containers: one ansible run per command would be far slower.
testinfra_hosts = [
    f"podman://{name}"
    for name in AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("redis")
]

PRIMARY, REPLICA = 6379, 6380
# The seed's instances: the package's main unit, and the template unit's instance "slave".
INSTANCES = {PRIMARY: "", REPLICA: "@slave"}


def unit(platform: dict, port: int) -> str:
    return f"{platform['unit']}{INSTANCES[port]}.service"


def configs(platform: dict) -> list[str]:
    server = platform["server"]
    return [f"{platform['conf_dir']}/{server}.conf", f"{platform['conf_dir']}/{server}-slave.conf"]


def test_the_platforms_server_and_version_are_installed(host, connect, platform):
    for package in platform["server_packages"] + platform["tools_packages"]:
        assert host.package(package).is_installed, package
    # The version the platform table gives (README, docs/platforms.md), as the server reports it.
    info = connect(PRIMARY).info("server")
    matches, version = runs_its_platform(info, platform)
    assert matches, (platform["name"], version)


@pytest.mark.parametrize("port", INSTANCES)
def test_units_enabled_and_running_with_debian_hardening(host, platform, port, journal):
    service = host.service(unit(platform, port))
    assert service.is_enabled, journal(unit(platform, port))
    assert service.is_running, journal(unit(platform, port))
    props = service.systemd_properties
    assert props["ProtectSystem"] == "strict"
    assert props["NoNewPrivileges"] == "yes"
    assert props["User"] == platform["user"]


@pytest.mark.parametrize("port", INSTANCES)
def test_listens_only_on_configured_addresses(host, address, port):
    listening = {
        str(s).split("://", 1)[1].rsplit(":", 1)[0]
        for s in host.socket.get_listening_sockets()
        if str(s).startswith("tcp") and str(s).endswith(f":{port}")
    }
    assert listening == {"127.0.0.1", "::1", address}


def test_config_is_private_to_the_server(host, platform):
    for path in configs(platform):
        config = host.file(path)
        owner = (platform["user"], platform["group"], 0o640)
        assert (config.user, config.group, config.mode) == owner
        assert "protected-mode yes" in config.content_string
        assert "replica-announce-pass" not in config.content_string


@pytest.mark.parametrize("port", INSTANCES)
def test_the_server_cannot_rewrite_the_files_ansible_writes(host, connect, platform, port):
    """A failover's CONFIG REWRITE would change the file under Ansible's feet, and the next run
    would restart the instance to undo it. The folder is root's (dpkg keeps it so), so the rewrite
    fails and the file stays as written, whether or not systemd's sandbox holds (it does not on
    Debian 13 in these containers)."""
    folder = host.file(platform["conf_dir"])
    assert (folder.user, folder.group, folder.mode) == ("root", platform["group"], 0o2750)
    assert host.run(f"dpkg-statoverride --list {platform['conf_dir']}").stdout.split()[:3] == [
        "root",
        platform["group"],
        "2750",
    ]
    config = configs(platform)[list(INSTANCES).index(port)]
    before = host.file(config).sha256sum
    with pytest.raises(redis.ResponseError):
        connect(port).config_rewrite()
    assert host.file(config).sha256sum == before


def test_replication_credentials_are_private_to_the_server(host, platform):
    """masterauth lives in its own included file, so a new password applies without a restart."""
    path = f"{platform['conf_dir']}/replication-auth.conf"
    auth = host.file(path)
    assert (auth.user, auth.group, auth.mode) == (platform["user"], platform["group"], 0o640)
    for config in configs(platform):
        assert f"include {path}" in host.file(config).content_string
        assert "masterauth" not in host.file(config).content_string


@pytest.mark.parametrize("port", INSTANCES)
def test_password_is_required(connect, port):
    assert connect(port).ping() is True
    with pytest.raises(redis.AuthenticationError, match=r"NOAUTH|Authentication required"):
        connect(port, password=None).ping()
    with pytest.raises(redis.AuthenticationError, match=r"WRONGPASS|invalid"):
        connect(port, password="not-the-password-at-all").ping()


def test_key_written_on_primary_is_read_on_replica_within_a_second(connect):
    key, value = f"demo:{uuid.uuid4()}", "replicated!"
    assert connect(PRIMARY).set(key, value, ex=60)
    replica = connect(REPLICA)
    assert wait_for(lambda: replica.get(key) == value, timeout=1.0)


def test_replica_reports_link_up(connect):
    info = connect(REPLICA).info("replication")
    assert info["role"] == "slave"
    assert info["master_host"] == "127.0.0.1"
    assert info["master_port"] == PRIMARY
    assert info["master_link_status"] == "up"
    assert connect(PRIMARY).info("replication")["connected_slaves"] == 1


def test_replica_refuses_writes(connect):
    with pytest.raises(redis.ReadOnlyError):
        connect(REPLICA).set("demo:forbidden", "x")


def test_replica_can_save_in_its_data_directory(host, connect, platform):
    replica = connect(REPLICA)
    before = replica.lastsave()
    replica.bgsave()
    assert wait_for(lambda: replica.lastsave() > before, timeout=10, step=0.2)
    dump = host.file(f"{platform['data_dir']}/slave/dump.rdb")
    assert dump.exists
    assert dump.user == platform["user"]


def test_replica_reconnects_after_restart_and_keeps_data(host, connect, journal, platform):
    key = f"demo:{uuid.uuid4()}"
    connect(PRIMARY).set(key, "survives", ex=300)
    replica = connect(REPLICA)
    assert wait_for(lambda: replica.get(key) == "survives", timeout=1.0)

    host.run_test(f"systemctl restart {unit(platform, REPLICA)}")

    def link_up() -> bool:
        try:
            return connect(REPLICA).info("replication")["master_link_status"] == "up"
        except redis.ConnectionError:
            return False

    assert wait_for(link_up, timeout=15, step=0.2), journal(unit(platform, REPLICA))
    assert connect(REPLICA).get(key) == "survives"


def test_check_mode_on_converged_host_changes_nothing(playbook):
    """`site.yml --check --diff` on the converged host: no change, no failure."""
    run = playbook("site.yml", "--check", "--diff")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    changed = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", recap(run.stdout), re.M)
    # Every platform's host, none changed (the output names the tasks that would change).
    assert {host for host, _ in changed} >= set(LAB_HOSTS), recap(run.stdout)
    assert {count for _, count in changed} == {"0"}, re.findall(r"^changed: .*$", run.stdout, re.M)


def test_verification_playbook_passes(playbook):
    run = playbook("playbooks/verify.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "role:slave master_link_status:up" in run.stdout


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ('{"redis_password": "Test1234"}', "redis_password: must be at least 16 characters"),
        ('{"redis_password": "Test1234Test1234"}', "redis_password: is a known weak password"),
        (
            (
                '{"redis_instances": [{"name": "main", "port": 6379},'
                ' {"name": "slave", "port": 6379, "role": "replica"}]}'
            ),
            "redis_instances[slave].port: 6379 is already used by instance 'main'",
        ),
        (
            '{"redis_instances": [{"name": "main", "port": 6379, "role": "master"}]}',
            # The role's argument spec refuses it first (preflight calls its `assert` entry point).
            "value of role must be one of: primary, replica, got: master found in redis_instances",
        ),
        ('{"redis_instances": [{"name": "main", "port": 99999}]}', "port: 99999 is outside"),
        (
            '{"redis_acl_rules": {"admin": "+@all", "replication": "+psync >pw", "app": "+get"}}',
            "redis_acl_rules.replication: '>...': password rules are not allowed here",
        ),
        (
            '{"redis_acl_rules": {"admin": "+@all", "replication": "+psync", "app": "+GET"}}',
            "redis_acl_rules.app: word 1 of 1 is not an ACL rule the role can validate",
        ),
        (
            '{"redis_acl_passwords": {"replication": "breaks \\"a config line\\""}}',
            "redis_acl_passwords.replication: must not contain whitespace, quotes or backslashes",
        ),
        ('{"cache_app_port": 0}', "cache_app_port: 0 is outside 1-65535"),
        ('{"cache_app_cache_ttl": -5}', "cache_app_cache_ttl: must be a positive"),
        ('{"cache_app_bind": ["app.example.com"]}', "cache_app_bind: give IP addresses"),
        ('{"redis_tls": true}', "redis_tls_pki_dir: required to generate certificates"),
        (
            '{"redis_server": "keydb"}',
            "value of redis_server must be one of: redis, valkey, got: keydb",
        ),
        # Redis hosts asked to become Valkey hosts in place (and the other way round).
        ('{"redis_server": "valkey"}', "has redis-server installed but redis_server=valkey"),
    ],
)
def test_bad_variables_stop_before_any_change(lab, playbook, extra_vars, message):
    """One bad variable stops the run on every platform's host before any of them changes."""

    def files() -> dict:
        names = platforms()
        return {
            (host, path): lab[host].file(path).sha256sum
            for host in lab
            for path in (configs(names[host])[0], f"{names[host]['conf_dir']}/users.acl")
        }

    before = files()
    run = playbook("site.yml", "-e", extra_vars)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert message in output, output[-3000:]
    changed = re.findall(r"changed=(\d+)", recap(run.stdout))
    assert len(changed) >= len(lab), recap(run.stdout)
    assert set(changed) == {"0"}, recap(run.stdout)
    assert files() == before
