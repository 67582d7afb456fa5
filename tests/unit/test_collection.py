"""The repository as users install it: `ansible-galaxy collection build`, installed into an empty
collections path, every role's and module's documentation rendered by its full name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta").is_dir())
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=120, cwd=ROOT, env=env
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """The tarball, and the collections path it was installed into (empty before)."""
    build = tmp_path_factory.mktemp("build")
    built = run(str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(build))
    assert built.returncode == 0, built.stderr
    (tarball,) = build.glob("*.tar.gz")
    path = build / "collections"
    # Only this path: the checkout's link in collections/ must not stand in for the install.
    config = build / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(path), "ANSIBLE_CONFIG": str(config)}
    done = run(
        str(BIN / "ansible-galaxy"),
        "collection",
        "install",
        "--no-deps",
        "-p",
        str(path),
        str(tarball),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return tarball, path, env


def test_the_tarball_carries_the_roles_plugins_and_app_and_leaves_the_lab_out(installed):
    tarball, _path, _env = installed
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    for wanted in ("MANIFEST.json", "FILES.json", "meta/runtime.yml", "app/pyproject.toml"):
        assert wanted in names
    assert any(n.startswith("app/src/") for n in names)
    assert {f"roles/{r}/meta/argument_specs.yml" for r in ROLES} <= set(names)
    assert {f"plugins/modules/{m}.py" for m in MODULES} <= set(names)
    # ansible-test's ignore file travels with the plugins it is about.
    assert "tests/sanity/ignore-2.19.txt" in names
    for left_out in ("molecule/", "tests/unit/", "lab/", "benchmarks/", ".venv/", "collections/"):
        assert not [n for n in names if n.startswith(left_out)], left_out
    manifest = json.loads(archive_member(tarball, "MANIFEST.json"))
    assert manifest["collection_info"]["version"] == GALAXY["version"]


def archive_member(tarball: Path, name: str) -> str:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(name)
        assert member is not None
        return member.read().decode()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_documents_its_entry_points(installed, role):
    _tarball, _path, env = installed
    shown = run(str(BIN / "ansible-doc"), "-t", "role", "--json", f"{FQCN}.{role}", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "WARNING" not in shown.stderr, shown.stderr
    doc = json.loads(shown.stdout)[f"{FQCN}.{role}"]
    assert "main" in doc["entry_points"]
    for name, entry in doc["entry_points"].items():
        assert entry.get("short_description"), f"{role} {name}: no short_description"


@pytest.mark.parametrize("module", MODULES)
def test_every_module_documents_its_options_examples_and_return(installed, module):
    _tarball, _path, env = installed
    shown = run(str(BIN / "ansible-doc"), "--json", f"{FQCN}.{module}", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "WARNING" not in shown.stderr, shown.stderr
    doc = json.loads(shown.stdout)[f"{FQCN}.{module}"]
    # The shared login options come from the collection's doc fragment.
    assert {"login_host", "login_password", "tls", "ca_certs"} <= set(doc["doc"]["options"])
    assert doc["examples"].strip(), "no EXAMPLES"
    assert doc["return"], "no RETURN"
