#!/usr/bin/python
"""Ansible module: keep a Sentinel's ACL users in line, or check which passwords are in force."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_sentinel_acl
short_description: Keep a Sentinel's ACL users as listed; check which passwords are in force
description:
  - Sentinel keeps its users in memory and writes them (passwords as SHA-256 hashes) into its own
    configuration file whenever it rewrites it; C(ACL SETUSER) alone is not written. So the users
    Sentinel runs with are compared with I(users), those that differ are set with C(ACL SETUSER),
    users not listed are deleted, and then C(SENTINEL FLUSHCONFIG) writes them to the file. A
    converged Sentinel is reported unchanged.
  - Rules are compared as Sentinel itself normalises them (through a scratch user, deleted again);
    passwords by their SHA-256 hashes. Neither passwords nor hashes are returned or shown in a diff.
  - The C(default) user, unless listed, is kept off with no rights; every client names its user.
  - Users other than C(default) are set first and C(default) last, so a Sentinel deployed before it
    had users (reached as C(default) with the admin's password) gets its admin user before
    C(default) is turned off; the module then logs in as the admin.
  - With I(expect_passwords), fails unless each listed password is one the user has now (the
    rotation's check, before anything changes).
author: Redis cache-aside project (!UNKNOWN)
extends_documentation_fragment:
  - redis_cache.stack.login
options:
  login_port: {type: int, default: 26379, description: Sentinel port.}
  login_user: {type: str, default: admin, description: ACL user allowed to run ACL commands.}
  socket_timeout: {type: float, default: 2.0, description: Connect and read timeout in seconds.}
  users:
    type: list
    elements: dict
    description: Every user Sentinel should have. Omitted, users are only checked.
    suboptions:
      name: {type: str, required: true, description: User name.}
      enabled: {type: bool, default: true, description: On or off.}
      rules:
        type: str
        default: ""
        description: ACL rules (commands, channels), without passwords or on/off.
      passwords:
        type: list
        elements: str
        default: []
        description: Passwords the user accepts (several while clients move to a new one).
  expect_passwords:
    type: dict
    description: User name to a password that must be one of that user's now.
"""

EXAMPLES = r"""
- name: Give Sentinel its users, any other deleted
  redis_cache.stack.redis_sentinel_acl:
    login_password: "{{ vault_sentinel_admin_password }}"
    users:
      - name: admin
        rules: "+@all"
        passwords: ["{{ vault_sentinel_admin_password }}"]
      - name: app
        rules: "+sentinel|get-master-addr-by-name +sentinel|sentinels +ping +auth"
        passwords: ["{{ vault_sentinel_app_password }}"]
"""

RETURN = r"""
users_changed:
  description: Users created or set again
  returned: success
  type: list
  elements: str
users_removed:
  description: Users deleted (not listed)
  returned: success
  type: list
  elements: str
"""

import hashlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redis_cache.stack.plugins.module_utils.connection import (
    LoginError,
    connect_sentinel,
    login_argument_spec,
    redis,
    require_redis,
    scratch_user,
    where,
)

DEFAULT_USER = "default"
# Unless listed, `default` is off with no rights: every client names its user.
DEFAULT_OFF = {"name": DEFAULT_USER, "enabled": False, "rules": "", "passwords": []}
FLAGS = ("on", "off")
# Rule words that set passwords or the on/off flag: those come from `passwords` and `enabled`.
PASSWORD_WORDS = ("nopass", "resetpass", "reset", *FLAGS)


def digest(password):
    return hashlib.sha256(password.encode()).hexdigest()


def _running(client):
    """name -> (enabled, password hashes, the other words of Sentinel's description of the user).

    The words are compared as a set: Redis 7.0 lists single commands and subcommands in the order
    of its command table's hash dict, which changes while that dict rehashes.
    """
    users = {}
    for line in client.execute_command("ACL", "LIST"):
        _user, name, *words = line.split()
        users[name] = (
            "on" in words,
            frozenset(w[1:] for w in words if w.startswith("#")),
            frozenset(w for w in words if not w.startswith("#") and w not in FLAGS),
        )
    return users


def _wanted(client, listed):
    """name -> (enabled, password hashes, the rules as Sentinel describes them) for each user."""
    result = {}
    with scratch_user(client) as scratch:
        for name, user in listed.items():
            # "reset" leaves the scratch user off and without passwords: nobody can log in as it.
            client.execute_command("ACL", "SETUSER", scratch, "reset", *user["rules"].split())
            _enabled, _hashes, words = _running(client)[scratch]
            hashes = frozenset(digest(p) for p in user["passwords"])
            result[name] = (user["enabled"], hashes, words)
    return result


def _describe(state):
    """A user's state for a diff: flag, rules, and only how many passwords."""
    enabled, hashes, words = state
    return f"{'on' if enabled else 'off'} {' '.join(sorted(words))} ({len(hashes)} password(s))"


def _rule_errors(users):
    errors = []
    for user in users:
        words = user["rules"].split()
        for position, word in enumerate(words, start=1):
            if word.startswith((">", "<", "#", "!")) or word.lower() in PASSWORD_WORDS:
                errors.append(
                    f"users.{user['name']}: word {position} of {len(words)} sets a password or the "
                    "on/off flag; use passwords and enabled"
                )
        if user["enabled"] and not user["passwords"]:
            errors.append(f"users.{user['name']}: an enabled user needs a password")
    return errors


def _not_in_force(client, expected):
    running = _running(client)
    return sorted(
        name
        for name, password in expected.items()
        if name not in running or digest(password) not in running[name][1]
    )


def _setuser(client, name, user, hashes):
    client.execute_command(
        "ACL",
        "SETUSER",
        name,
        "reset",
        "on" if user["enabled"] else "off",
        *(f"#{h}" for h in sorted(hashes)),
        *user["rules"].split(),
    )


def reconcile(module, client, session_user):
    """Bring the users in line; return (changed names, removed names, diff)."""
    listed = {DEFAULT_USER: DEFAULT_OFF} | {user["name"]: user for user in module.params["users"]}
    wanted = _wanted(client, listed)
    running = _running(client)
    changed = sorted(name for name in wanted if running.get(name) != wanted[name])
    # Any other user goes, a scratch user left by an interrupted run included.
    removed = sorted(name for name in running if name not in wanted)
    diff = {
        "before": {name: _describe(running[name]) for name in changed if name in running},
        "after": {name: _describe(wanted[name]) for name in changed},
    }
    diff["before"].update({name: _describe(running[name]) for name in removed})
    if module.check_mode or not (changed or removed):
        return changed, removed, diff
    for name in changed:
        if name != DEFAULT_USER:
            _setuser(client, name, listed[name], wanted[name][1])
    if session_user is None:
        # Logged in as `default` (a Sentinel from before its users): from now on, as the admin.
        client, _user = connect_sentinel(module.params)
    for name in removed:
        client.execute_command("ACL", "DELUSER", name)
    if DEFAULT_USER in changed:
        _setuser(client, DEFAULT_USER, listed[DEFAULT_USER], wanted[DEFAULT_USER][1])
    # ACL SETUSER is not written to Sentinel's file by itself.
    client.execute_command("SENTINEL", "FLUSHCONFIG")
    still = sorted(name for name in wanted if _running(client).get(name) != wanted[name])
    if still:
        module.fail_json(msg=f"{where(module.params)}: users still differ: {', '.join(still)}")
    return changed, removed, diff


def main():
    module = AnsibleModule(
        argument_spec={
            **login_argument_spec("sentinel"),
            "users": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "name": {"type": "str", "required": True},
                    "enabled": {"type": "bool", "default": True},
                    "rules": {"type": "str", "default": ""},
                    "passwords": {
                        "type": "list",
                        "elements": "str",
                        "default": [],
                        "no_log": True,
                    },
                },
            },
            "expect_passwords": {"type": "dict", "no_log": True},
        },
        supports_check_mode=True,
    )
    require_redis(module)
    params = module.params
    users = params["users"]
    if users is not None:
        errors = _rule_errors(users)
        if errors:
            module.fail_json(msg="; ".join(errors))
    try:
        client, session_user = connect_sentinel(params)
        missing = _not_in_force(client, params["expect_passwords"] or {})
        if missing:
            module.fail_json(
                msg=f"{where(params)}: the given password of {', '.join(missing)} is not one this "
                "Sentinel's user has now",
                users=missing,
            )
        changed, removed = [], []
        diff = {"before": {}, "after": {}}
        if users is not None:
            changed, removed, diff = reconcile(module, client, session_user)
    except LoginError as error:
        module.fail_json(msg=str(error))
    except redis.RedisError as error:
        module.fail_json(msg=f"{where(params)}: {error}")
    module.exit_json(
        changed=bool(changed or removed), users_changed=changed, users_removed=removed, diff=diff
    )


if __name__ == "__main__":
    main()
