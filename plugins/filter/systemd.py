"""Filters reading the state of several systemd units from one `systemctl show` command.

The systemd_service module asks systemd about one unit per call, and a run that enables and
starts units that already are would pay that call for each one, every run. The roles read the
units' state with one `systemctl show` first (`systemd_show_query` gives its argv, `systemd_units`
reads its output) and call the module only for the units `systemd_pending` names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PROPERTIES = (
    "LoadState",
    "UnitFileState",
    "ActiveState",
    "NeedDaemonReload",
    "ExecMainStartTimestamp",
)


def systemd_show_query(units: Iterable[str]) -> list[str]:
    """The command (argv) that prints the properties the filters read, one block per unit, in the
    order given; timestamps in UTC with microseconds."""
    return [
        "systemctl",
        "show",
        "--timestamp=us+utc",
        f"--property={','.join(PROPERTIES)}",
        "--",
        *units,
    ]


def systemd_units(output: str | Sequence[str], units: Sequence[str]) -> dict[str, dict[str, str]]:
    """Unit name (as given to the query) to its properties. `output`: what the query printed, as
    a string or its lines. systemctl prints a block per unit in the order of its arguments,
    separated by an empty line; an unknown unit gets a block too (LoadState=not-found)."""
    text = output if isinstance(output, str) else "\n".join(output)
    blocks = text.strip("\n").split("\n\n")
    if len(blocks) != len(units):
        raise ValueError(f"systemctl show printed {len(blocks)} blocks for units {list(units)}")
    found: dict[str, dict[str, str]] = {}
    for unit, block in zip(units, blocks, strict=True):
        properties = dict.fromkeys(PROPERTIES, "")
        for line in block.splitlines():
            key, _, value = line.partition("=")
            properties[key] = value
        found[unit] = properties
    return found


def systemd_pending(units: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The units that are not enabled and running yet, or whose files changed since systemd read
    them (NeedDaemonReload): those the systemd_service module still has work on."""
    return [
        unit
        for unit, properties in units.items()
        if properties.get("UnitFileState") != "enabled"
        or properties.get("ActiveState") != "active"
        or properties.get("NeedDaemonReload") == "yes"
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "systemd_show_query": systemd_show_query,
            "systemd_units": systemd_units,
            "systemd_pending": systemd_pending,
        }
