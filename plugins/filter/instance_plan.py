"""The redis_instance_plan filter: each instance of `redis_instances` with its systemd unit,
paths and replication source, as the redis role's tasks and templates use it; and
redis_host_address, the one rule for how other hosts reach a host."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.redis_cache.stack.plugins.plugin_utils.instances import (
    MAIN,
    host_instances,
    replica_source,
)

LOOPBACK = "127.0.0.1"


def _unit(name: str, platform: Mapping[str, Any]) -> str:
    return platform["unit"] if name == MAIN else f"{platform['unit']}@{name}"


def _dropin(name: str, platform: Mapping[str, Any]) -> str:
    """The drop-in of the instance's unit (all template instances share the template's)."""
    unit = platform["unit"] if name == MAIN else f"{platform['unit']}@"
    return f"/etc/systemd/system/{unit}.service.d/ansible-owned-config.conf"


def _paths(name: str, platform: Mapping[str, Any]) -> dict[str, str]:
    """Where Debian's packages put an instance's files (the same scheme for redis and valkey)."""
    server, unit = platform["server"], platform["unit"]
    conf_dir, data_dir, log_dir = platform["conf_dir"], platform["data_dir"], platform["log_dir"]
    if name == MAIN:
        return {
            "conf": f"{conf_dir}/{server}.conf",
            "dir": data_dir,
            "pidfile": f"/run/{server}/{unit}.pid",
            "logfile": f"{log_dir}/{unit}.log",
        }
    return {
        "conf": f"{conf_dir}/{server}-{name}.conf",
        "dir": f"{data_dir}/{name}",
        "pidfile": f"/run/{server}-{name}/{unit}.pid",
        "logfile": f"{log_dir}/{unit}-{name}.log",
    }


def _client_host(bind: Sequence[str]) -> str:
    addresses = [address.lstrip("-") for address in bind]
    if LOOPBACK in addresses:
        return LOOPBACK
    return addresses[0] if addresses else LOOPBACK


def redis_host_address(host: str, hostvars: Mapping[str, Any]) -> str:
    """How other hosts reach `host`'s Redis and Sentinel: its redis_address, else its
    ansible_host, else its inventory name. The one rule for replicas, Sentinel and clients."""
    host_vars = hostvars[host]
    return str(host_vars.get("redis_address") or host_vars.get("ansible_host") or host)


def redis_instance_plan(
    instances: Sequence[Mapping[str, Any]],
    hostname: str,
    hostvars: Mapping[str, Any],
    primary_host: str,
    bind: Sequence[str],
    platform: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Return one dict per instance: its settings plus unit, paths and `replicaof`.

    `platform` is the role's redis_platform fact (vars/platforms): the server's unit and folders.
    """
    plan = []
    for instance in instances:
        name = instance["name"]
        item: dict[str, Any] = {
            "name": name,
            "port": int(instance["port"]),
            "role": instance.get("role", "primary"),
            "unit": _unit(name, platform),
            "bind": list(instance.get("bind") or bind),
            "config": dict(instance.get("config") or {}),
            "replicaof": None,
            **_paths(name, platform),
        }
        item["client_host"] = _client_host(item["bind"])
        item["dropin"] = _dropin(name, platform)
        # What the instance reads only when it starts (tasks/restart.yml compares their times).
        item["start_files"] = [item["conf"], item["dropin"]]
        if item["role"] == "replica":
            source_host, source_name = replica_source(instance, primary_host)
            source = next(
                (i for i in host_instances(hostvars, source_host) if i["name"] == source_name),
                None,
            )
            if source is None:
                raise ValueError(
                    f"redis_instances[{name}]: host {source_host!r} has no instance {source_name!r}"
                )
            if source_host == hostname:
                address = _client_host(source.get("bind") or bind)
            else:
                address = redis_host_address(source_host, hostvars)
            item["replicaof"] = {"host": address, "port": int(source["port"])}
        plan.append(item)
    return plan


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "redis_host_address": redis_host_address,
            "redis_instance_plan": redis_instance_plan,
        }
