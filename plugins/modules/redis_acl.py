#!/usr/bin/python
"""Ansible module: check ACL rules against a running Redis; apply an ACL file where users differ."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_acl
short_description: Check ACL rules against a running Redis, and apply an ACL file where it differs
description:
  - With I(state=validated), each user's rules are tried on the running server as a scratch user
    (ACL SETUSER, then ACL DELUSER); a rule the server would refuse (an unknown command, say) fails
    the task before the file is written, naming the user and the word's position, never the word.
  - With I(state=loaded), the users the server runs with are compared with the file at I(path)
    (each line normalised by the server itself through a scratch user, so a line it would refuse
    fails the task before any user changes); only the users that differ are changed, at runtime
    (ACL SETUSER with the file's rules, ACL DELUSER for a user the file no longer has; no
    restart), so a run that stopped between writing and applying is finished by the next one.
    Not ACL LOAD, which crashes a Valkey 8.0 replica (valkey-io/valkey#1832, Debian 12's
    backports); the server then reads the same file when it next starts. A user that lost a
    password or was turned off has its other connections closed (they log in again with a
    password in force); returned in C(closed).
  - With I(state=checked), nothing changes; for each user of I(logins), which of its candidate
    passwords the server accepts (a fresh connection per try), returned as booleans in
    C(accepted).
  - A refused connection to a unit that systemd reports stopped means "not running" (it reads the
    file when it starts); reported unchanged. Any other failure (LOADING, TLS, timeout) is waited
    on for I(wait) seconds, then fails.
  - Talks to Redis with redis-py (C(python3-redis)); passwords travel in the module's arguments,
    never on a command line.
author: Redis cache-aside project (!UNKNOWN)
extends_documentation_fragment:
  - redis_cache.stack.login
options:
  state:
    type: str
    choices: [validated, loaded, checked]
    default: loaded
    description: Check I(rules), bring the running users in line with I(path), or try I(logins).
  rules:
    type: dict
    description: With I(state=validated), user name to rules (no password rules).
  path:
    type: path
    description: With I(state=loaded), the ACL file on the host.
  logins:
    type: dict
    description: With I(state=checked), user name to a list of candidate passwords.
  login_port: {type: int, default: 6379, description: Redis port.}
  login_user: {type: str, required: true, description: ACL user allowed to run ACL commands.}
  unit: {type: str, description: The instance's systemd unit (without .service).}
  wait: {type: int, default: 60, description: Seconds to wait for a usable connection.}
"""

EXAMPLES = r"""
- name: Check ACL rules against the running server before writing them to a file
  redis_cache.stack.redis_acl:
    state: validated
    rules:
      app: "~cache:* +get +set +del"
    login_user: admin
    login_password: "{{ vault_redis_password }}"

- name: Bring the running users in line with the users file
  redis_cache.stack.redis_acl:
    state: loaded
    path: /etc/redis/users.acl
    login_port: 6380
    login_user: admin
    login_password: "{{ vault_redis_password }}"
    unit: redis-server@replica

- name: Ask which candidate passwords the server accepts, changing nothing
  redis_cache.stack.redis_acl:
    state: checked
    logins:
      app: ["{{ vault_app_password }}", "{{ vault_app_previous_password }}"]
    login_user: admin
    login_password: "{{ vault_redis_password }}"
"""

RETURN = r"""
running:
  description: False when the instance is stopped or still runs the package's defaults.
  returned: always
  type: bool
state:
  description: C(stopped) or C(unconfigured) when the instance was not reached as configured.
  returned: when running is false
  type: str
users:
  description: With I(state=loaded), the users that differed and were set or deleted.
  returned: when changed
  type: list
  elements: str
closed:
  description: Users whose other connections were closed (they lost a password or were turned off).
  returned: when changed
  type: list
  elements: str
accepted:
  description: With I(state=checked), user name to one boolean per candidate password.
  returned: with state=checked
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redis_cache.stack.plugins.module_utils.acl_file import (
    AclFileError,
    load_file,
)
from ansible_collections.redis_cache.stack.plugins.module_utils.connection import (
    client_for,
    connect_or_exit,
    login_argument_spec,
    login_refused,
    redis,
    scratch_user,
)


def _refused_word(client, scratch, words):
    """1-based position of the first word the server refuses, or 0."""
    try:
        client.execute_command("ACL", "SETUSER", scratch, "reset", *words)
        return 0
    except redis.ResponseError:
        pass
    for position, word in enumerate(words, start=1):
        try:
            client.execute_command("ACL", "SETUSER", scratch, word)
        except redis.ResponseError:
            return position
    return len(words)


def validate(client, rules):
    errors = []
    with scratch_user(client) as scratch:
        for user, text in sorted(rules.items()):
            words = str(text).split()
            position = _refused_word(client, scratch, words)
            if position:
                errors.append(
                    f"redis_acl_rules.{user}: word {position} of {len(words)} is refused by this "
                    "server (an unknown command, category or rule)"
                )
    return errors


def _accepted(params, user, password):
    client = client_for(params, user, password)
    # The connection's AUTH alone: a user like `replication` may run nothing else worth asking.
    connection = client.connection_pool.make_connection()
    try:
        connection.connect()
        return True
    except redis.RedisError as error:
        if login_refused(error):
            return False
        raise
    finally:
        connection.disconnect()


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "choices": ["validated", "loaded", "checked"],
                "default": "loaded",
            },
            "rules": {"type": "dict"},
            "logins": {"type": "dict", "no_log": True},
            "path": {"type": "path"},
            **login_argument_spec("server"),
        },
        required_if=[
            ("state", "validated", ["rules"]),
            ("state", "loaded", ["path"]),
            ("state", "checked", ["logins"]),
        ],
        supports_check_mode=True,
    )
    params = module.params
    client = connect_or_exit(module)

    if params["state"] == "checked":
        accepted = {
            user: [_accepted(params, user, password) for password in candidates]
            for user, candidates in params["logins"].items()
        }
        module.exit_json(changed=False, running=True, accepted=accepted)

    if params["state"] == "validated":
        errors = validate(client, params["rules"])
        if errors:
            module.fail_json(msg="; ".join(errors), errors=errors)
        module.exit_json(changed=False, running=True)

    try:
        users, closed = load_file(module, client, params["path"])
    except AclFileError as error:
        module.fail_json(msg=str(error))
    if users:
        module.exit_json(changed=True, running=True, users=users, closed=closed)
    module.exit_json(changed=False, running=True)


if __name__ == "__main__":
    main()
