"""Filters that turn the role's `redis_instances` into what the tasks and templates need.

`redis_instance_plan` expands each instance with its systemd unit, paths and replication source;
`redis_instance_errors` lists the cross-variable mistakes that argument specs cannot express,
so that the play can stop before any host changes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

MAIN = "main"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
ROLES = ("primary", "replica")
# What the role's defaults/main.yml declares, for primaries whose inventory does not set it.
DEFAULT_INSTANCES = ({"name": MAIN, "port": 6379, "role": "primary"},)
LOOPBACK = "127.0.0.1"
# What community.general.redis's `config` command turns into a number of bytes (a number, and
# maybe a unit: 10, 1.5k, 0064MB).
SIZE_LIKE_RE = re.compile(r"^\s*(\d+\.?\d*|\.\d+)\s*([KMGTPEZY]B?|B)?\s*$", re.IGNORECASE)


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


def _host_instances(hostvars: Mapping[str, Any], host: str) -> Sequence[Mapping[str, Any]]:
    return hostvars[host].get("redis_instances") or DEFAULT_INSTANCES


def _source(instance: Mapping[str, Any], primary_host: str) -> tuple[str, str]:
    return (
        instance.get("primary_host") or primary_host,
        instance.get("primary_instance") or MAIN,
    )


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
            source_host, source_name = _source(instance, primary_host)
            source = next(
                (i for i in _host_instances(hostvars, source_host) if i["name"] == source_name),
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
    source_host, source_name = _source(instance, primary_host)
    if source_host not in hostvars:
        return [
            f"redis_instances[{name}].primary_host: {source_host!r} is not a host of the inventory"
        ]
    if source_host == hostname and source_name == name:
        return [f"redis_instances[{name}]: a replica cannot replicate from itself"]
    names = [i.get("name") for i in _host_instances(hostvars, source_host)]
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


# Always refused, whatever the inventory adds: the tutorial's password first, then the usual ones.
KNOWN_WEAK = ("Test1234", "foobared", "password", "changeme", "redis", "sentinel", "admin")


def _is_weak(password: str, weak: Sequence[str]) -> bool:
    """A known or listed weak password, alone or repeated (a weak word twice is no stronger)."""
    lowered = password.lower()
    for candidate in {w.lower() for w in (*KNOWN_WEAK, *weak) if w}:
        repeats, rest = divmod(len(lowered), len(candidate))
        if rest == 0 and lowered == candidate * repeats:
            return True
    return False


def redis_password_errors(
    password: Any, variable: str, weak: Sequence[str] = (), min_length: int = 16
) -> list[str]:
    """Return why a password is unusable, without ever echoing it."""
    if not isinstance(password, str) or not password:
        return [f"{variable}: required (keep it in a vault; see README)"]
    if len(password) < min_length:
        return [f"{variable}: must be at least {min_length} characters"]
    if _is_weak(password, weak):
        return [f"{variable}: is a known weak password"]
    if re.search(r'[\s"\'\\]', password):
        return [f"{variable}: must not contain whitespace, quotes or backslashes"]
    return []


# ACL rule tokens the role accepts (Redis 7.0 ACL SETUSER syntax, minus passwords: those come from
# redis_acl_passwords and are written hashed). Anything else is refused before any host changes.
ACL_USER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ACL_TOKEN_RES = (
    re.compile(r"^(on|off|allkeys|allchannels|allcommands|nocommands|resetkeys|resetchannels)$"),
    re.compile(r"^(%R|%W|%RW)?~[^\s]+$"),  # key patterns, optionally read- or write-only
    re.compile(r"^&[^\s]+$"),  # channel patterns
    re.compile(r"^[+-]@[a-z]+$"),  # command categories
    re.compile(r"^[+-][a-z]+(\|[a-z-]+)?$"),  # commands and subcommands
)


def redis_acl_errors(
    rules: Any,
    passwords: Any,
    admin_user: str,
    replication_user: str,
    weak: Sequence[str],
) -> list[str]:
    """Why redis_acl_rules / redis_acl_passwords can't be written to an ACL file."""
    if not isinstance(rules, Mapping) or not rules:
        return ["redis_acl_rules: give a mapping of user name to rules"]
    passwords = passwords if isinstance(passwords, Mapping) else {}
    errors = []
    for name in (admin_user, replication_user):
        if name not in rules:
            errors.append(
                f"redis_acl_rules: user {name!r} is missing (Ansible and replicas use it)"
            )
    for name, rule in rules.items():
        if name == "default":
            errors.append("redis_acl_rules: 'default' is always off; give your users other names")
            continue
        if not isinstance(name, str) or not ACL_USER_RE.match(name):
            errors.append(f"redis_acl_rules: {name!r} is not a valid user name (A-Z a-z 0-9 _ -)")
            continue
        if not isinstance(rule, str):
            errors.append(f"redis_acl_rules.{name}: rules must be a string")
            continue
        words = rule.split()
        for position, token in enumerate(words, start=1):
            if token.startswith((">", "<", "#", "!")) or token in ("nopass", "resetpass", "reset"):
                # Never echo what may be a password.
                shown = token if token.isalpha() else f"{token[:1]}..."
                errors.append(
                    f"redis_acl_rules.{name}: {shown!r}: password rules are not allowed here; "
                    "set the password in redis_acl_passwords"
                )
            elif not any(pattern.match(token) for pattern in ACL_TOKEN_RES):
                # By position only: a password pasted without its ">" must not reach the log.
                errors.append(
                    f"redis_acl_rules.{name}: word {position} of {len(words)} is not an ACL rule "
                    "the role can validate"
                )
        if name != admin_user:
            errors.extend(
                redis_password_errors(passwords.get(name), f"redis_acl_passwords.{name}", weak)
            )
    replication = passwords.get(replication_user)
    if isinstance(replication, str) and SIZE_LIKE_RE.match(replication):
        # community.general.redis, which applies masterauth at runtime, reads such a value as a
        # memory size (0001k -> 1024) and would set another password.
        errors.append(
            f"redis_acl_passwords.{replication_user}: a number (with a size unit or not) is "
            "read as a size where the password is applied; use letters and digits mixed"
        )
    return errors


def redis_tls_names(names: Sequence[Any]) -> list[str]:
    """subjectAltName entries for a certificate: "IP:" for addresses, "DNS:" for names."""
    entries: list[str] = []
    for name in names:
        if not name:
            continue
        text = str(name).strip().lstrip("-")
        try:
            entry = f"IP:{ipaddress.ip_address(text)}"
        except ValueError:
            entry = f"DNS:{text}"
        if entry not in entries:
            entries.append(entry)
    return entries


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "redis_host_address": redis_host_address,
            "redis_instance_plan": redis_instance_plan,
            "redis_instance_errors": redis_instance_errors,
            "redis_password_errors": redis_password_errors,
            "redis_acl_errors": redis_acl_errors,
            "redis_tls_names": redis_tls_names,
        }
