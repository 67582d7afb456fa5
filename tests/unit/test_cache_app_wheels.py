"""Wheels for the target, not the controller: the role fetches and builds the app's wheels for a
host's Python version, CPU and C library, whatever the controller runs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from ansible_collections.redis_cache.stack.plugins.filter.wheels import (
    cache_app_wheel_platforms,
    cache_app_wheel_sha256,
    cache_app_wheel_tag,
    cache_app_wheels_missing,
)

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "app" / "requirements.txt"


def test_a_target_names_its_folder_and_every_manylinux_its_c_library_runs():
    target = {"python": "3.13", "arch": "x86_64", "glibc": "2.41"}
    assert cache_app_wheel_tag(target) == "cp313-x86_64-glibc2.41"
    platforms = cache_app_wheel_platforms(target)[1::2]
    assert platforms[0] == "manylinux_2_41_x86_64"
    assert "manylinux_2_28_x86_64" in platforms
    assert "manylinux_2_17_x86_64" in platforms
    assert platforms[-1] == "manylinux2014_x86_64"
    assert "manylinux_2_42_x86_64" not in platforms


@pytest.mark.parametrize(
    "target",
    [
        {"python": "3", "arch": "x86_64", "glibc": "2.41"},
        {"python": "3.13", "arch": "x86 64", "glibc": "2.41"},
        {"python": "3.13", "arch": "x86_64", "glibc": ""},
    ],
)
def test_a_target_that_is_not_a_cpython_on_glibc_is_refused(target):
    with pytest.raises(ValueError, match="wheel target"):
        cache_app_wheel_tag(target)


def only(paths):
    (path,) = paths
    return path


def build(targets: list[dict], wheel_dir: Path, source: Path) -> None:
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(ROOT / "tests" / "unit" / "playbooks" / "cache_app_wheels.yml"),
            "-e",
            json.dumps(
                {
                    "cache_app_wheel_targets": targets,
                    "cache_app_wheel_dir": str(wheel_dir),
                    "cache_app_source_dir": str(source),
                }
            ),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]


def test_wheels_for_another_python_and_cpu_than_the_controllers(tmp_path):
    """A 3.11 x86-64 controller builds for Debian 13 on arm64 (and a Python 3.12 host)."""
    other = [
        {"python": "3.13", "arch": "aarch64", "glibc": "2.41"},
        {"python": "3.12", "arch": "x86_64", "glibc": "2.36"},
    ]
    controller = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert all(t["python"] != controller for t in other)
    # The app's source is only read: a copy without write permission, as an installed collection's
    # may be, is left as it was.
    source = tmp_path / "app"
    shutil.copytree(
        ROOT / "app", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    for path in [source, *source.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    wheel_dir = tmp_path / "wheels"
    build(other, wheel_dir, source)
    pins = [
        line.split("==")[0].lower().replace("-", "_")
        for line in REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    for target, abi, platform in [
        (other[0], "cp313", "aarch64"),
        (other[1], "cp312", "x86_64"),
    ]:
        tag = cache_app_wheel_tag(target)
        with tarfile.open(only(wheel_dir.glob(f"*/{tag}.tar"))) as archive:
            wheels = [Path(name).name for name in archive.getnames() if name.endswith(".whl")]
        # Every pin and the app, and the one compiled dependency built for the target only.
        assert {w.split("-")[0].lower() for w in wheels} == {*pins, "cache_app"}
        (markupsafe,) = [w for w in wheels if w.startswith("markupsafe-")]
        assert f"-{abi}-{abi}-" in markupsafe
        assert platform in markupsafe
        assert f"cp{controller.replace('.', '')}" not in markupsafe
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before


def test_wheels_are_built_again_only_when_the_source_changes(tmp_path):
    target = [{"python": "3.13", "arch": "x86_64", "glibc": "2.41"}]
    tag = cache_app_wheel_tag(target[0])
    source = tmp_path / "app"
    shutil.copytree(
        ROOT / "app", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    wheel_dir = tmp_path / "wheels"
    build(target, wheel_dir, source)
    first = only(wheel_dir.glob(f"*/{tag}.tar"))
    built = first.stat()
    # Bytecode and build leftovers beside the source are not the source.
    (source / "src" / "cache_app" / "__pycache__").mkdir(exist_ok=True)
    (source / "src" / "cache_app" / "__pycache__" / "views.cpython-311.pyc").write_bytes(b"x")
    build(target, wheel_dir, source)
    assert only(wheel_dir.glob(f"*/{tag}.tar")) == first
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == (built.st_ino, built.st_mtime_ns)
    # A changed module is a new source: a new archive, with the change in its app wheel.
    views = source / "src" / "cache_app" / "views.py"
    views.write_text(views.read_text() + "\n# changed\n")
    build(target, wheel_dir, source)
    (second,) = set(wheel_dir.glob(f"*/{tag}.tar")) - {first}
    with tarfile.open(second) as archive:
        (app_wheel,) = [
            m for m in archive.getmembers() if m.name.endswith(".whl") and "cache_app" in m.name
        ]
        with zipfile.ZipFile(archive.extractfile(app_wheel)) as wheel:
            assert wheel.read("cache_app/views.py").decode().endswith("# changed\n")


def test_only_targets_without_an_archive_are_built(tmp_path):
    built = {"python": "3.13", "arch": "x86_64", "glibc": "2.41"}
    missing = {"python": "3.11", "arch": "x86_64", "glibc": "2.36"}
    wheel = "cache_app-1.0.0-py3-none-any.whl"
    (tmp_path / f"{cache_app_wheel_tag(built)}.tar").write_bytes(b"")
    (tmp_path / cache_app_wheel_tag(built)).mkdir()
    (tmp_path / cache_app_wheel_tag(built) / wheel).write_bytes(b"wheel")
    assert cache_app_wheels_missing([built, missing], str(tmp_path), wheel) == [missing]
    assert cache_app_wheels_missing([built], str(tmp_path / "another-source"), wheel) == [built]
    # An archive whose app wheel is gone is built again.
    (tmp_path / cache_app_wheel_tag(built) / wheel).unlink()
    assert cache_app_wheels_missing([built], str(tmp_path), wheel) == [built]


def test_a_wheel_is_known_by_its_sha256_and_a_missing_one_is_an_error(tmp_path):
    wheel = tmp_path / "cache_app-1.0.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    assert cache_app_wheel_sha256(str(wheel)) == hashlib.sha256(b"wheel").hexdigest()
    with pytest.raises(FileNotFoundError, match="no such wheel"):
        cache_app_wheel_sha256(str(tmp_path / "none.whl"))
