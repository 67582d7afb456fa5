"""Every entry point a playbook or role calls is checked against its argument spec: ansible-core
validates only `tasks_from: <name>` naming an entry point of meta/argument_specs.yml (with `.yml`,
the spec is silently skipped), and a bad variable stops the play before the entry point's first
task."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "redis_cache.stack."
INCLUDES = ("ansible.builtin.include_role", "ansible.builtin.import_role")


def calls(node):
    """(role, tasks_from) of every include_role/import_role below node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in INCLUDES and isinstance(value, dict) and "tasks_from" in value:
                yield value["name"], value["tasks_from"]
            else:
                yield from calls(value)
    elif isinstance(node, list):
        for item in node:
            yield from calls(item)


def every_call():
    files = [
        *(ROOT / "playbooks").glob("*.yml"),
        *(ROOT / "roles").glob("*/tasks/*.yml"),
        *(ROOT / "molecule").glob("*/*.yml"),
        *(ROOT / "tests" / "unit" / "playbooks").glob("*.yml"),
    ]
    for path in sorted(files):
        for role, entry in calls(yaml.safe_load(path.read_text())):
            if "{{" not in role:
                yield pytest.param(role, entry, id=f"{path.relative_to(ROOT)}:{entry}")


@pytest.mark.parametrize(("role", "entry"), list(every_call()))
def test_every_call_names_an_entry_point_with_a_spec(role, entry):
    assert role.startswith(PREFIX), f"{role}: call roles by their full name"
    specs = yaml.safe_load(
        (ROOT / "roles" / role[len(PREFIX) :] / "meta" / "argument_specs.yml").read_text()
    )
    assert entry in specs["argument_specs"], (
        f"{role} has no entry point {entry!r} in its argument specs"
    )


def call(entry_role: str, entry_point: str, variables: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(ROOT / "tests" / "unit" / "playbooks" / "entry_point.yml"),
            "-e",
            json.dumps({"entry_role": entry_role, "entry_point": entry_point, **variables}),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


SENTINEL_SECRETS = {
    "redis_sentinel_admin_password": "admin-password-0123456789",
    "redis_sentinel_redis_password": "redis-password-0123456789",
}


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({**SENTINEL_SECRETS, "redis_sentinel_port": "twenty-six"}, "redis_sentinel_port"),
        (
            {"redis_sentinel_admin_password": SENTINEL_SECRETS["redis_sentinel_admin_password"]},
            "missing required arguments: redis_sentinel_redis_password",
        ),
    ],
    ids=["wrong-type", "missing-secret"],
)
def test_a_bad_variable_stops_an_entry_point_before_its_first_task(variables, error):
    run = call("redis_cache.stack.redis_sentinel", "health", variables)
    assert run.returncode != 0
    assert "Validating arguments against arg spec 'health'" in run.stdout
    assert error in run.stdout, run.stdout[-3000:]
    # Stopped at the check: no task of health.yml ran.
    assert "Read this host's replication state" not in run.stdout
    # And the secret given is not shown.
    assert SENTINEL_SECRETS["redis_sentinel_admin_password"] not in run.stdout + run.stderr


def test_the_sentinel_checks_inputs_are_the_assert_entry_points_options():
    """The checks are skipped for settings this run has passed: the digest that says so must
    cover every option of the entry point, or a change to a missing one would go unchecked."""
    role = ROOT / "roles" / "redis_sentinel"
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"][
        "assert"
    ]["options"]
    inputs = yaml.safe_load((role / "vars" / "main.yml").read_text())[
        "_redis_sentinel_check_inputs"
    ]
    assert sorted(inputs) == sorted(options)


def _names_read(text: str) -> set[str]:
    """The redis_* variables a task file reads (not the collection's own names)."""
    text = text.replace("redis_cache.stack.", "")
    return set(re.findall(r"(?<![\w.])(_?redis_[a-z0-9_]+)", text))


def test_the_redis_checks_inputs_are_every_variable_the_checks_read():
    """The redis role's checks are skipped for settings this run has passed: the digest must
    cover every variable they read, through the role's own variables too, or a change to a
    missing one would go unchecked."""
    role = ROOT / "roles" / "redis"
    own = yaml.safe_load((role / "vars" / "main.yml").read_text())
    tasks = "".join((role / "tasks" / name).read_text() for name in ("checks.yml", "platform.yml"))
    facts = {"redis_platform", "_redis_checked", "_redis_other_server_program"}
    filters = {"redis_instance_errors", "redis_password_errors", "redis_acl_errors"}
    seen, todo, read = set(), _names_read(tasks), set()
    while todo:
        name = todo.pop()
        if name in seen or name in facts | filters:
            continue
        seen.add(name)
        if name in own:
            todo |= _names_read(json.dumps(own[name]))
        elif not name.startswith("_"):
            read.add(name)
        else:
            # Set by the task file itself (vars:, register:, include_vars).
            assert re.search(rf"^\s*{name}:", tasks, re.MULTILINE) or name.startswith(
                ("_redis_server_names", "_redis_release_names")
            ), name
    assert read <= set(own["_redis_check_inputs"]), read - set(own["_redis_check_inputs"])
    assert "redis_password" in read


def checked_redis_settings(password: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(ROOT / "tests" / "unit" / "playbooks" / "redis_checks.yml"),
            "-e",
            json.dumps(
                {
                    "checks_password": "redis-password-0123456789",
                    "checks_acl_passwords": {
                        "replication": "replication-password-0123456789",
                        "sentinel": "sentinel-password-0123456789",
                        "app": "app-password-0123456789",
                    },
                    "checks_last_password": password,
                }
            ),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_the_redis_checks_run_again_only_for_other_settings():
    task = (
        "TASK [redis_cache.stack.redis : "
        "Check the server, instances, replication sources, passwords and TLS settings]"
    )
    same = checked_redis_settings("redis-password-0123456789")
    assert same.returncode == 0, same.stdout[-3000:]
    assert same.stdout.count(task) == 1
    other = checked_redis_settings("short")
    assert other.returncode != 0
    assert other.stdout.count(task) == 2
    assert "redis_password" in other.stdout


SENTINEL_PEER_SECRETS = {
    "redis_sentinel_peer_password": "peer-password-0123456789",
    "redis_sentinel_app_password": "app-password-0123456789",
}


def checked_sentinel_settings(quorum: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(ROOT / "tests" / "unit" / "playbooks" / "sentinel_checks.yml"),
            "-e",
            json.dumps({**SENTINEL_SECRETS, **SENTINEL_PEER_SECRETS, "checks_last_quorum": quorum}),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_the_sentinel_checks_run_again_only_for_other_settings():
    same = checked_sentinel_settings(quorum=1)
    assert same.returncode == 0, same.stdout[-3000:]
    # The first call checks; the second (the same settings) and the third (the same quorum, 1, as
    # the play's) skip the checks.
    assert (
        same.stdout.count("TASK [redis_cache.stack.redis_sentinel : Check Sentinel's settings]")
        == 1
    )
    other = checked_sentinel_settings(quorum=2)
    assert other.returncode != 0
    assert (
        other.stdout.count("TASK [redis_cache.stack.redis_sentinel : Check Sentinel's settings]")
        == 2
    )
    assert "redis_sentinel_quorum: 2 must be between 1 and the 1 Sentinels" in other.stdout
    assert SENTINEL_SECRETS["redis_sentinel_admin_password"] not in other.stdout + other.stderr


def test_a_renamed_sentinel_variable_is_refused_with_its_new_name():
    run = call(
        "redis_cache.stack.redis_sentinel",
        "assert",
        {
            **SENTINEL_SECRETS,
            **SENTINEL_PEER_SECRETS,
            "redis_sentinel_quorum": 1,
            "ansible_become_method": "ansible.builtin.su",
            "redis_sentinel_auth_user": "sentinel",
        },
    )
    assert run.returncode != 0
    assert "redis_sentinel_auth_user was renamed redis_sentinel_redis_user" in run.stdout
