"""Every entry point a playbook or role calls is checked against its argument spec: ansible-core
validates only `tasks_from: <name>` naming an entry point of meta/argument_specs.yml (with `.yml`,
the spec is silently skipped), and a bad variable stops the play before the entry point's first
task."""

from __future__ import annotations

import json
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
