"""Shared by the collection's filters: how `redis_instances` names its instances and where a
replica's source is (plugins/filter/instance_plan.py and instance_errors.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAIN = "main"
# What the redis role's defaults/main.yml declares, for primaries whose inventory does not set it.
DEFAULT_INSTANCES = ({"name": MAIN, "port": 6379, "role": "primary"},)


def host_instances(hostvars: Mapping[str, Any], host: str) -> Sequence[Mapping[str, Any]]:
    """The instances `host` runs: its redis_instances, else the role's default."""
    return hostvars[host].get("redis_instances") or DEFAULT_INSTANCES


def replica_source(instance: Mapping[str, Any], primary_host: str) -> tuple[str, str]:
    """The host and instance name a replica copies: its own settings, else the primary's main."""
    return (
        instance.get("primary_host") or primary_host,
        instance.get("primary_instance") or MAIN,
    )
