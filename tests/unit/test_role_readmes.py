"""Each role's README.md is what its argument specs say now (docs/role_readmes.py)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = runpy.run_path(str(ROOT / "docs" / "role_readmes.py"))


@pytest.mark.parametrize("role", GENERATOR["roles"]())
def test_the_role_readme_matches_its_argument_specs(role):
    readme = ROOT / "roles" / role / "README.md"
    assert readme.read_text() == GENERATOR["render"](role), (
        f"roles/{role}/README.md is stale: run python docs/role_readmes.py"
    )
