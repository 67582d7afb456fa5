"""Fixtures the unit tests share."""

from __future__ import annotations

import subprocess

import pytest
from module_runs import INTERPRETERS


@pytest.fixture(params=INTERPRETERS, ids=["venv", "debian"])
def python(request) -> str:
    """Each interpreter a module runs under, with redis-py."""
    if subprocess.run([request.param, "-c", "import redis"], check=False).returncode:
        pytest.fail(f"{request.param} has no redis-py (make bootstrap installs python3-redis)")
    return request.param
