"""Filter reading the modification times of many files from one `stat` command.

A loop of the stat module makes one round trip per file; the roles read every file an instance
or the app reads at start (to tell whether it runs with older files than those in place) with one
`stat --format='%n %.9Y' -- PATH...` instead, and this filter reads its output.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def file_mtimes(lines: Iterable[str], paths: Iterable[str]) -> dict[str, float]:
    """Path to modification time (seconds since the epoch) for each of `paths`; 0 for a path
    stat did not report (a missing file)."""
    mtimes = dict.fromkeys(paths, 0.0)
    for line in lines:
        path, _, mtime = str(line).rpartition(" ")
        if path in mtimes:
            mtimes[path] = float(mtime)
    return mtimes


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"file_mtimes": file_mtimes}
