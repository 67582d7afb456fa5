"""One rule for a host's address: replicas and Sentinel reach the primary at the same place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def rendered(tmp_path: Path, primary_vars: str) -> list[str]:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"primary ansible_connection=local {primary_vars}\nreplica ansible_connection=local\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    }
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            json.dumps(
                {
                    "redis_primary_host": "primary",
                    "redis_instances": [{"name": "main", "port": 6379, "role": "replica"}],
                }
            ),
            str(ROOT / "tests/unit/playbooks/addresses.yml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    task = json.loads(run.stdout)["plays"][0]["tasks"][0]
    return task["hosts"]["replica"]["msg"].split()


@pytest.mark.parametrize(
    ("primary_vars", "address"),
    [
        ("ansible_host=10.9.0.1", "10.9.0.1"),
        ("ansible_host=10.9.0.1 redis_address=10.8.0.1", "10.8.0.1"),
        ("", "primary"),
    ],
)
def test_replicas_and_sentinel_use_the_same_primary_address(tmp_path, primary_vars, address):
    assert rendered(tmp_path, primary_vars) == [address, address]
