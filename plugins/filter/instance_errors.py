"""The redis_instance_errors filter: the mistakes in `redis_instances` that argument specs
cannot express (names, ports, a replica's source), so that the play stops before any host
changes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.redis_cache.stack.plugins.plugin_utils.instances import (
    host_instances,
    replica_source,
)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
ROLES = ("primary", "replica")


def _port_error(name: str, port: Any) -> str | None:
    try:
        number = int(port)
    except (TypeError, ValueError):
        return f"redis_instances[{name}].port: {port!r} is not a port number"
    if not 1 <= number <= 65535:
        return f"redis_instances[{name}].port: {number} is outside 1-65535"
    return None


def _replica_errors(
    instance: Mapping[str, Any], hostname: str, hostvars: Mapping[str, Any], primary_host: str
) -> list[str]:
    name = instance["name"]
    source_host, source_name = replica_source(instance, primary_host)
    if source_host not in hostvars:
        return [
            f"redis_instances[{name}].primary_host: {source_host!r} is not a host of the inventory"
        ]
    if source_host == hostname and source_name == name:
        return [f"redis_instances[{name}]: a replica cannot replicate from itself"]
    names = [i.get("name") for i in host_instances(hostvars, source_host)]
    if source_name not in names:
        known = ", ".join(map(str, names))
        return [
            (
                f"redis_instances[{name}].primary_instance: host {source_host!r} has no instance "
                f"named {source_name!r} (it has {known})"
            )
        ]
    return []


def redis_instance_errors(
    instances: Sequence[Mapping[str, Any]],
    hostname: str,
    hostvars: Mapping[str, Any],
    primary_host: str,
) -> list[str]:
    """Return one line per mistake in `redis_instances`; empty when the plan is sound."""
    errors: list[str] = []
    if not instances:
        return ["redis_instances: at least one instance is required"]
    seen_names: set[str] = set()
    seen_ports: dict[int, str] = {}
    for index, instance in enumerate(instances):
        name = str(instance.get("name", f"#{index}"))
        if not NAME_RE.match(name):
            errors.append(
                f"redis_instances[{name}].name: use lower-case letters, digits, '-' or '_'"
            )
        if name in seen_names:
            errors.append(f"redis_instances[{name}].name: defined twice")
        seen_names.add(name)
        port_error = _port_error(name, instance.get("port"))
        if port_error:
            errors.append(port_error)
        else:
            port = int(instance["port"])
            if port in seen_ports:
                errors.append(
                    f"redis_instances[{name}].port: {port} is already used by "
                    f"instance {seen_ports[port]!r}"
                )
            seen_ports[port] = name
        role = instance.get("role", "primary")
        if role not in ROLES:
            errors.append(
                f"redis_instances[{name}].role: {role!r} is not one of {', '.join(ROLES)}"
            )
        elif role == "replica" and NAME_RE.match(name):
            errors.extend(_replica_errors(instance, hostname, hostvars, primary_host))
    return errors


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"redis_instance_errors": redis_instance_errors}
