#!/usr/bin/python
"""Ansible module: read and reconcile what a Redis Sentinel monitors, or ask it for a failover."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_sentinel
short_description: Keep a Sentinel's monitored primary settings in line, report its view, fail over
description:
  - Talks to one Redis Sentinel with redis-py (C(python3-redis) on the target), logged in as its
    admin ACL user; passwords travel in the module's arguments, never on a command line.
  - Sentinel owns its configuration file (it rewrites it at runtime), so settings are applied at
    runtime with C(SENTINEL SET), which Sentinel persists itself. Only settings that differ are set.
  - Reports the Sentinel's view; the primary's address, its replicas and the other Sentinels, and
    whether the quorum is reachable (C(SENTINEL CKQUORUM)).
author: Redis cache-aside project (!UNKNOWN)
extends_documentation_fragment:
  - redis_cache.stack.login
options:
  login_port: {type: int, default: 26379, description: Sentinel port.}
  login_user: {type: str, default: admin, description: Sentinel's ACL user with admin rights.}
  socket_timeout: {type: float, default: 2.0, description: Connect and read timeout in seconds.}
  name: {type: str, required: true, description: Name of the monitored primary.}
  settings:
    type: dict
    default: {}
    description: Readable per-primary settings (down-after-milliseconds, failover-timeout,
      parallel-syncs, quorum) to keep at these values.
  global_settings:
    type: dict
    default: {}
    description: Sentinel's own settings (resolve-hostnames, announce-hostnames, announce-ip,
      announce-port) to keep at these values with C(SENTINEL CONFIG SET).
  auth_user:
    type: str
    description: ACL user this Sentinel logs in to Redis as (C(SENTINEL SET auth-user)).
  auth_pass:
    type: str
    description: Its password (C(SENTINEL SET auth-pass)). Sentinel does not show it, so it is
      compared with the line Sentinel keeps in I(config_file).
  sentinel_user:
    type: str
    description: ACL user this Sentinel logs in to the other Sentinels as
      (C(SENTINEL CONFIG SET sentinel-user)).
  sentinel_pass:
    type: str
    description: Its password (C(SENTINEL CONFIG SET sentinel-pass)); compared with what Sentinel
      holds, never shown. Sentinel drops its links to the other Sentinels when either changes, and
      they log in again at once.
  config_file:
    type: path
    description: Sentinel's configuration file (C(/etc/redis/sentinel.conf) or
      C(/etc/valkey/sentinel.conf)), read (never written) to compare the credentials. Required
      with I(auth_user) or I(auth_pass).
  failover:
    type: bool
    default: false
    description: Run C(SENTINEL FAILOVER) and wait until the Sentinel names another primary.
  failover_wait:
    type: float
    default: 60
    description: Seconds to wait for the new primary.
"""

EXAMPLES = r"""
- name: Keep Sentinel's settings for the primary in line and read its view
  redis_cache.stack.redis_sentinel:
    login_password: "{{ vault_sentinel_admin_password }}"
    name: cache
    settings:
      down-after-milliseconds: 5000
      failover-timeout: 60000
  register: view

- name: Move the primary role to a replica
  redis_cache.stack.redis_sentinel:
    login_password: "{{ vault_sentinel_admin_password }}"
    name: cache
    failover: true
"""

RETURN = r"""
primary:
  description: ip, port and flags of the primary as this Sentinel sees it
  returned: success
  type: dict
replicas:
  description: The replicas this Sentinel knows, with flags and link status
  returned: success
  type: list
  elements: dict
sentinels:
  description: How many other Sentinels this one knows
  returned: success
  type: int
quorum_ok:
  description: SENTINEL CKQUORUM's verdict
  returned: success
  type: bool
quorum_message:
  description: SENTINEL CKQUORUM's answer or error
  returned: success
  type: str
settings:
  description: The readable settings after the run
  returned: success
  type: dict
global_settings:
  description: The Sentinel settings asked for, after the run
  returned: success
  type: dict
linked_sentinels:
  description: How many other Sentinels have answered this one's last PING on a live link
  returned: success
  type: int
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redis_cache.stack.plugins.module_utils.connection import (
    LoginError,
    connect_sentinel,
    login_argument_spec,
    pairs,
    redis,
    require_redis,
    text,
    where,
)

READABLE = ("down-after-milliseconds", "failover-timeout", "parallel-syncs", "quorum")
CREDENTIALS = ("auth-user", "auth-pass")
LINKS = ("sentinel-user", "sentinel-pass")
GLOBAL = ("resolve-hostnames", "announce-hostnames", "announce-ip", "announce-port")


def _credentials(path, name):
    """The auth-user / auth-pass Sentinel keeps for this primary in its file (it rewrites them)."""
    found = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            match line.split():
                case ["sentinel", key, primary, value] if key in CREDENTIALS and primary == name:
                    found[key] = value
    return found


def _raw_master(client, name):
    """SENTINEL MASTER as a flat str->str dict (redis-py's parser differs between versions)."""
    reply = client.execute_command("SENTINEL", "MASTER", name)
    return pairs(reply)


def _given(params, keys):
    """The options given for these Sentinel keys (option auth_pass for key auth-pass)."""
    values = {key: params[key.replace("-", "_")] for key in keys}
    return {key: value for key, value in values.items() if value is not None}


def _config(client, keys):
    """Sentinel's own settings (SENTINEL CONFIG GET), an unset one as None."""
    found = {}
    for key in keys:
        found.update(pairs(client.execute_command("SENTINEL", "CONFIG", "GET", key)))
    return {key: found.get(key) or None for key in keys}


def _view(client, name):
    try:
        master = _raw_master(client, name)
    except redis.ResponseError as error:
        if "No such master" not in str(error):
            raise
        known = [pairs(m)["name"] for m in client.execute_command("SENTINEL", "MASTERS") or []]
        raise NotMonitored(
            f"this Sentinel monitors no primary named {name!r} (it monitors {known}); a run does "
            "not rename or replace the monitored primary (docs/sentinel.md)"
        ) from None
    replicas = [pairs(r) for r in client.execute_command("SENTINEL", "REPLICAS", name) or []]
    try:
        message = text(client.execute_command("SENTINEL", "CKQUORUM", name))
        quorum_ok = True
    except redis.ResponseError as error:
        message, quorum_ok = str(error), False
    return {
        "primary": {
            "ip": master["ip"],
            "port": int(master["port"]),
            "flags": master["flags"].split(","),
        },
        "replicas": [
            {
                "ip": r["ip"],
                "port": int(r["port"]),
                "flags": r["flags"].split(","),
                "master_link_status": r.get("master-link-status", ""),
                "master_host": r.get("master-host", ""),
            }
            for r in replicas
        ],
        "sentinels": int(master["num-other-sentinels"]),
        "quorum_ok": quorum_ok,
        "quorum_message": message,
        "settings": {key: int(master[key]) for key in READABLE},
        "linked_sentinels": sum(
            1
            for peer in map(pairs, client.execute_command("SENTINEL", "SENTINELS", name) or [])
            if _answered(peer)
        ),
    }


def _answered(peer):
    """A link that has had its answer: connected, not s_down, and no PING left unanswered (a link
    just created counts as connected before anything comes back)."""
    flags = set(peer["flags"].split(","))
    return not {"disconnected", "s_down"} & flags and int(peer.get("last-ping-sent", 1)) == 0


class NotMonitored(Exception):
    """The Sentinel monitors no primary of that name."""


def main():
    module = AnsibleModule(
        argument_spec={
            **login_argument_spec("sentinel"),
            "name": {"type": "str", "required": True},
            "settings": {"type": "dict", "default": {}},
            "global_settings": {"type": "dict", "default": {}},
            "auth_user": {"type": "str"},
            "auth_pass": {"type": "str", "no_log": True},
            "sentinel_user": {"type": "str"},
            "sentinel_pass": {"type": "str", "no_log": True},
            "config_file": {"type": "path"},
            "failover": {"type": "bool", "default": False},
            "failover_wait": {"type": "float", "default": 60},
        },
        required_by={"auth_user": "config_file", "auth_pass": "config_file"},
        supports_check_mode=True,
    )
    require_redis(module)
    params = module.params
    for option, supported in (("settings", READABLE), ("global_settings", GLOBAL)):
        unknown = sorted(set(params[option]) - set(supported))
        if unknown:
            module.fail_json(msg=f"{option}: unsupported {unknown}; supported: {list(supported)}")

    name = params["name"]
    try:
        client, _user = connect_sentinel(params)
        before = _view(client, name)
        wanted = {key: int(value) for key, value in params["settings"].items()}
        differ = {k: v for k, v in wanted.items() if before["settings"][k] != v}
        wanted_credentials = _given(params, CREDENTIALS)
        current = _credentials(params["config_file"], name) if wanted_credentials else {}
        stale = {k: v for k, v in wanted_credentials.items() if current.get(k) != v}
        wanted_links = _given(params, LINKS)
        links = _config(client, LINKS) if wanted_links else {}
        relink = {k: v for k, v in wanted_links.items() if links.get(k) != v}
        wanted_global = {key: str(value) for key, value in params["global_settings"].items()}
        global_before = _config(client, wanted_global)
        reglobal = {k: v for k, v in wanted_global.items() if global_before[k] != v}
        if not module.check_mode:
            for key, value in {**differ, **stale}.items():
                client.execute_command("SENTINEL", "SET", name, key, str(value))
            for key, value in {**relink, **reglobal}.items():
                client.execute_command("SENTINEL", "CONFIG", "SET", key, value)
        changed = bool(differ or stale or relink or reglobal)
        if params["failover"] and not module.check_mode:
            old = (before["primary"]["ip"], before["primary"]["port"])
            client.execute_command("SENTINEL", "FAILOVER", name)
            deadline = time.monotonic() + params["failover_wait"]
            while True:
                current = _view(client, name)["primary"]
                if (current["ip"], current["port"]) != old:
                    break
                if time.monotonic() > deadline:
                    module.fail_json(
                        msg=f"Sentinel still names {old[0]}:{old[1]} as primary after "
                        f"{params['failover_wait']} s",
                    )
                time.sleep(0.2)
            changed = True
        elif params["failover"]:
            changed = True
        after = before if module.check_mode else _view(client, name)
    except (LoginError, NotMonitored) as error:
        module.fail_json(msg=str(error))
    except redis.RedisError as error:
        module.fail_json(msg=f"{where(params)}, primary {name!r}: {error}")
    # Credentials show as "(changed)", never their values.
    diff = {
        "before": {k: before["settings"][k] for k in sorted(wanted)}
        | {k: global_before[k] for k in sorted(wanted_global)},
        "after": {k: wanted[k] for k in sorted(wanted)}
        | dict(sorted(wanted_global.items()))
        | {k: "(changed)" for k in sorted(stale)}
        | {k: "(changed)" for k in sorted(relink)},
    }
    global_after = global_before if module.check_mode else _config(client, wanted_global)
    module.exit_json(changed=changed, diff=diff, global_settings=global_after, **after)


if __name__ == "__main__":
    main()
