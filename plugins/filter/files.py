"""Filter reading the modification times of many files from one `stat` command.

A loop of the stat module makes one round trip per file; the roles read every file an instance
or the app reads at start (to tell whether it runs with older files than those in place) with one
`stat --format='%n %.9Y' -- PATH...` instead, and this filter reads its output.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The command that reads them: `file_mtimes_query` gives its argv, `file_mtimes` reads its output.
STAT_MTIMES = ["stat", "--format=%n %.9Y", "--"]


def file_mtimes_query(paths: Iterable[str]) -> list[str]:
    """The command (argv) that prints each existing path of `paths` with its modification time;
    it exits 1 when one is missing, which `file_mtimes` reads as 0."""
    return [*STAT_MTIMES, *paths]


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
        return {"file_mtimes": file_mtimes, "file_mtimes_query": file_mtimes_query}
