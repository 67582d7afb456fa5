#!/usr/bin/python
"""Ansible module: a Redis instance's state, and its runtime kept in line, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_runtime
short_description: Read a Redis instance's state and keep its runtime in line, in one call
description:
  - Returns C(state) C(running) with C(started) (seconds since the epoch, as the host's clock
    says) and C(role) (C(master) or C(slave)); C(stopped) when the connection is refused and
    systemd reports the unit stopped; C(unconfigured) when the instance still runs the package's
    defaults (anyone may log in, no users file) or answers without the TLS it is to have.
  - With I(pidfile) and I(start_files), also whether the instance runs with older files than
    those in place (C(restart)). An instance writes its pid file when it starts, after reading
    its files, so the pid file's time is its start to the nanosecond (INFO's uptime counts whole
    seconds). A file that is missing counts as never changed. An unconfigured instance needs its
    first restart.
  - On a running instance, each step only where the running state differs (so a run that
    stopped half way is finished by the next one), at runtime, without a restart. First
    I(acl_file), the users file brought in with the steps of M(redis_cache.stack.redis_acl) and
    I(state=loaded); then I(config), settings applied with CONFIG SET (the replication
    credentials, which an instance's file also gives for its next start); last I(libraries), on
    a primary only (functions replicate), loaded as M(redis_cache.stack.redis_functions) does.
  - Without those three options, read-only. In check mode, says what it would change.
  - Anything else (LOADING, a TLS failure, timeouts) is waited on for I(wait) seconds, then fails;
    a refused login fails at once. When the server refuses the users file, the failure carries
    C(acl_refused), so that the caller can put the previous file back.
author: Redis cache-aside project (!UNKNOWN)
extends_documentation_fragment:
  - redis_cache.stack.login
options:
  login_port: {type: int, default: 6379, description: Redis port.}
  login_user:
    type: str
    required: true
    description: ACL user allowed to run INFO, and the commands the other options need.
  unit: {type: str, description: The instance's systemd unit (without .service).}
  wait: {type: int, default: 60, description: Seconds to wait for a usable connection.}
  pidfile: {type: path, description: The instance's pid file.}
  start_files:
    type: list
    elements: path
    default: []
    description: The files the instance reads when it starts (configuration, drop-in, TLS).
  acl_file: {type: path, description: The ACL users file to bring the running users in line with.}
  config:
    type: dict
    default: {}
    description: Setting name to value, set with CONFIG SET where the running value differs.
  secret_config:
    type: dict
    default: {}
    description: As I(config), for values that are never shown (passwords, such as C(masterauth)).
  libraries:
    type: list
    elements: str
    default: []
    description: Function library sources, each starting with its C(#!lua name=...) line.
"""

EXAMPLES = r"""
- name: Read when the replica started and its replication role
  redis_cache.stack.redis_runtime:
    login_port: 6380
    login_user: admin
    login_password: "{{ vault_redis_password }}"
    unit: redis-server@replica
  register: runtime

- name: Keep the users, replication credentials and functions in line; say if a restart is due
  redis_cache.stack.redis_runtime:
    login_user: admin
    login_password: "{{ vault_redis_password }}"
    unit: redis-server
    pidfile: /run/redis/redis-server.pid
    start_files: [/etc/redis/redis.conf]
    acl_file: /etc/redis/users.acl
    config:
      masteruser: replication
    secret_config:
      masterauth: "{{ vault_replication_password }}"
    libraries:
      - "{{ lookup('ansible.builtin.file', 'cache.lua') }}"
  register: runtime
"""

RETURN = r"""
state:
  description: C(running), C(stopped) or C(unconfigured).
  returned: always
  type: str
running:
  description: True when the instance was reached as configured.
  returned: always
  type: bool
started:
  description: When the instance started, in seconds since the epoch (the host's clock).
  returned: when state is running
  type: float
role:
  description: C(master) or C(slave), as INFO replication says.
  returned: when state is running
  type: str
restart:
  description: True when the instance runs with older files than those in place, or unconfigured.
  returned: always
  type: bool
users:
  description: The users that differed from I(acl_file), set or deleted.
  returned: when state is running
  type: list
  elements: str
closed:
  description: Users whose other connections were closed (they lost a password or were turned off).
  returned: when state is running
  type: list
  elements: str
config:
  description: The names of the I(config) and I(secret_config) settings that differed, and were set.
  returned: when state is running
  type: list
  elements: str
loaded:
  description: The libraries loaded because their code differed (on a primary).
  returned: when state is running
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redis_cache.stack.plugins.module_utils.acl_file import (
    AclFileError,
    load_file,
)
from ansible_collections.redis_cache.stack.plugins.module_utils.connection import (
    LoginError,
    NotRunning,
    Unconfigured,
    connect,
    login_argument_spec,
    redis,
    require_redis,
)
from ansible_collections.redis_cache.stack.plugins.module_utils.functions import (
    FunctionsError,
    libraries_by_name,
    load_libraries,
)


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _started(client, pidfile):
    """The pid file's time, or by INFO's uptime (rounded down by up to a second)."""
    if pidfile and _mtime(pidfile):
        return _mtime(pidfile)
    seconds, microseconds = client.time()
    return seconds + microseconds / 1e6 - int(client.info("server")["uptime_in_seconds"]) - 1


def _set_config(client, config, check_mode):
    """The names of the settings whose running value differs; set, unless in check mode."""
    differ = sorted(
        name
        for name, value in config.items()
        if client.config_get(name).get(name) != ("" if value is None else str(value))
    )
    if not check_mode:
        for name in differ:
            client.config_set(name, "" if config[name] is None else str(config[name]))
    return differ


def main():
    module = AnsibleModule(
        argument_spec={
            **login_argument_spec("server"),
            "pidfile": {"type": "path"},
            "start_files": {"type": "list", "elements": "path", "default": []},
            "acl_file": {"type": "path"},
            "config": {"type": "dict", "default": {}},
            "secret_config": {"type": "dict", "default": {}, "no_log": True},
            "libraries": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        wanted = libraries_by_name(params["libraries"])
    except FunctionsError as error:
        module.fail_json(msg=str(error))
    require_redis(module)
    try:
        client = connect(module)
    except NotRunning as reason:
        module.exit_json(
            changed=False, running=False, state="stopped", restart=False, msg=str(reason)
        )
    except Unconfigured as reason:
        module.exit_json(
            changed=False, running=False, state="unconfigured", restart=True, msg=str(reason)
        )
    except LoginError as reason:
        module.fail_json(msg=str(reason))

    users = closed = []
    if params["acl_file"]:
        try:
            users, closed = load_file(module, client, params["acl_file"])
        except AclFileError as error:
            module.fail_json(msg=str(error), acl_refused=True)
        if users and not module.check_mode:
            client = connect(module)  # the login user may have changed
    try:
        wanted_config = {**params["config"], **params["secret_config"]}
        config = _set_config(client, wanted_config, module.check_mode)
    except redis.ResponseError as error:
        module.fail_json(msg=f"CONFIG SET on port {params['login_port']}: {error}")
    role = client.info("replication")["role"]
    loaded = []
    if wanted and role == "master":
        try:
            loaded = load_libraries(client, wanted, module.check_mode)
        except FunctionsError as error:
            module.fail_json(msg=str(error))
    started = _started(client, params["pidfile"])
    newest = max((_mtime(path) for path in params["start_files"]), default=0.0)
    module.exit_json(
        changed=bool(users or config or loaded),
        running=True,
        state="running",
        started=started,
        role=role,
        restart=newest > started,
        users=users,
        closed=closed,
        config=config,
        loaded=loaded,
    )


if __name__ == "__main__":
    main()
