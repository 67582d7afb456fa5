"""The dpkg_query and dpkg_missing filters: how the roles ask dpkg which packages are installed,
and which of them are not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# How the roles ask dpkg (`dpkg-query` followed by package names): a line per package dpkg knows,
# "NAME STATUS", where "installed" is the only status that counts ("config-files": removed).
DPKG_QUERY = ["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\\n"]


def dpkg_query(packages: Sequence[str]) -> list[str]:
    """The command (argv) that asks dpkg about `packages`."""
    return [*DPKG_QUERY, *packages]


def dpkg_missing(lines: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The packages of `wanted` that the output lines of DPKG_QUERY do not show installed."""
    installed = {
        words[0] for words in (str(line).split() for line in lines) if words[1:] == ["installed"]
    }
    return [name for name in wanted if name.split("=")[0] not in installed]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"dpkg_query": dpkg_query, "dpkg_missing": dpkg_missing}
