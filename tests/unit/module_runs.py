"""Running one of the collection's modules on localhost, as a role runs it on a host (the unit
tests of the modules; pytest puts this folder on the import path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
# The venv's redis-py, and Debian's (python3-redis, which the hosts run the modules with): the
# `python` fixture (conftest.py) runs a test under each.
INTERPRETERS = [sys.executable, "/usr/bin/python3"]


def ansible_json_env() -> dict[str, str]:
    """The environment for an `ansible` run whose output is JSON (the json callback)."""
    return {
        **os.environ,
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_NOCOLOR": "1",
    }


def run_module_task(
    python: str, module: str, module_args: dict, check: bool = False, diff: bool = False
) -> tuple[dict, str]:
    """One task of the collection's `module` on localhost, run by the interpreter `python`: its
    result and the raw output."""
    run = subprocess.run(
        [
            str(BIN / "ansible"),
            "localhost",
            "-c",
            "local",
            "-i",
            "localhost,",
            "-e",
            f"ansible_python_interpreter={python}",
            "-m",
            f"redis_cache.stack.{module}",
            "-a",
            json.dumps(module_args),
            *(["--check"] if check else []),
            *(["--diff"] if diff else []),
        ],
        env=ansible_json_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result, run.stdout + run.stderr
