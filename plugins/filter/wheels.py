"""Filters naming a host's wheel target and the platform tags pip may fetch wheels for.

A target is what tasks/install.yml reads off the host's /usr/bin/python3: its version ("3.13"),
the CPU architecture ("x86_64", "aarch64") and the GNU C library's version ("2.41").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The oldest manylinux of PEP 600's form; wheels for older ones (manylinux2014 and before) carry
# a manylinux_2_17 (or older) alias that pip matches through the 2_17 tag's legacy names.
MANYLINUX_OLDEST = 17


def _parts(target: Mapping[str, Any]) -> tuple[str, str, int]:
    python, arch, glibc = str(target["python"]), str(target["arch"]), str(target["glibc"])
    if not re.fullmatch(r"3\.\d+", python):
        raise ValueError(f"wheel target: Python {python!r} is not a CPython 3 version like 3.13")
    if not re.fullmatch(r"[a-z0-9_]+", arch):
        raise ValueError(f"wheel target: architecture {arch!r} is not a machine name like x86_64")
    match = re.fullmatch(r"2\.(\d+)", glibc)
    if not match:
        raise ValueError(f"wheel target: C library {glibc!r} is not a GNU libc version like 2.41")
    return python, arch, int(match.group(1))


def cache_app_wheel_tag(target: Mapping[str, Any]) -> str:
    """The target's folder name, e.g. cp313-x86_64-glibc2.41."""
    python, arch, minor = _parts(target)
    return f"cp{python.replace('.', '')}-{arch}-glibc2.{minor}"


def cache_app_wheel_platforms(target: Mapping[str, Any]) -> list[str]:
    """pip's --platform arguments: every manylinux the target's C library runs, newest first.

    pip takes an explicit --platform literally, so each version is listed (manylinux2014 is the
    2_17 one's legacy name, which pip also matches).
    """
    _, arch, minor = _parts(target)
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, MANYLINUX_OLDEST - 1, -1)]
    tags.append(f"manylinux2014_{arch}")
    return [arg for tag in tags for arg in ("--platform", tag)]


def cache_app_wheels_missing(
    targets: list[Mapping[str, Any]], build_dir: str, wheel: str
) -> list[Any]:
    """The targets without an archive, or without the app wheel `wheel`, in `build_dir` (the
    build folder of this source, on the controller, where filters run): those
    tasks/wheels_build.yml has to build."""
    root = Path(build_dir)
    return [
        target
        for target in targets
        if not (root / f"{cache_app_wheel_tag(target)}.tar").is_file()
        or not (root / cache_app_wheel_tag(target) / wheel).is_file()
    ]


def cache_app_wheel_sha256(path: str) -> str:
    """The sha256 of a wheel the controller built (filters run there), without a task. The wheels
    of every target of the play are built before it is asked for (tasks/wheels.yml)."""
    wheel = Path(path)
    if not wheel.is_file():
        raise FileNotFoundError(
            f"{path}: no such wheel; remove its folder's archive to build it again"
        )
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


# What goes into the wheels: the project file, the pins and the package's source.
SOURCE_FILES = ("pyproject.toml", "requirements.txt")
SOURCE_TREE = "src"
NOT_SOURCE = ("__pycache__", ".egg-info", ".pyc")


def cache_app_source_digest(source_dir: str, *build_files: str) -> str:
    """A short digest of the app's source on the controller (its project file, pins and package
    files) and of how its wheels are built (this file's platform tags, and `build_files`, the
    tasks that build them): a target's wheels are built again only when it changes."""
    root = Path(source_dir)
    files = [(name, root / name) for name in SOURCE_FILES]
    files += sorted(
        (str(path.relative_to(root)), path)
        for path in (root / SOURCE_TREE).rglob("*")
        if path.is_file()
        and not any(part.endswith(NOT_SOURCE) for part in path.relative_to(root).parts)
    )
    files += [(f"build:{i}", Path(path)) for i, path in enumerate((__file__, *build_files))]
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "cache_app_wheel_tag": cache_app_wheel_tag,
            "cache_app_wheel_platforms": cache_app_wheel_platforms,
            "cache_app_source_digest": cache_app_source_digest,
            "cache_app_wheels_missing": cache_app_wheels_missing,
            "cache_app_wheel_sha256": cache_app_wheel_sha256,
        }
