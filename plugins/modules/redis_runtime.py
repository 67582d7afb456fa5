#!/usr/bin/python
"""Ansible module: when a Redis instance started and its replication role, to decide restarts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_runtime
short_description: Read when a Redis instance started and its replication role
description:
  - Returns C(state) C(running) with C(started) (seconds since the epoch, as the host's clock
    says, rounded down by up to a second) and C(role) (C(master) or C(slave)); C(stopped) when
    the connection is refused and systemd reports the unit stopped; C(unconfigured) when the
    instance still runs the package's defaults (anyone may log in, no users file).
  - Anything else (LOADING, TLS, timeouts) is waited on for I(wait) seconds, then fails; a refused
    login fails at once. Read-only; never changes anything.
author: Redis cache-aside project (!UNKNOWN)
extends_documentation_fragment:
  - redis_cache.stack.login
options:
  login_port: {type: int, default: 6379, description: Redis port.}
  login_user: {type: str, required: true, description: ACL user allowed to run INFO.}
  unit: {type: str, description: The instance's systemd unit (without .service).}
  wait: {type: int, default: 60, description: Seconds to wait for a usable connection.}
"""

EXAMPLES = r"""
- name: Read when the replica started and its replication role
  redis_cache.stack.redis_runtime:
    login_port: 6380
    login_user: admin
    login_password: "{{ vault_redis_password }}"
    unit: redis-server@replica
  register: runtime
"""

RETURN = r"""
state:
  description: C(running), C(stopped) or C(unconfigured).
  returned: always
  type: str
started:
  description: When the instance started, in seconds since the epoch (the host's clock).
  returned: when state is running
  type: float
role:
  description: C(master) or C(slave), as INFO replication says.
  returned: when state is running
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redis_cache.stack.plugins.module_utils.connection import (
    connect_or_exit,
    login_argument_spec,
)


def main():
    module = AnsibleModule(argument_spec=login_argument_spec("server"), supports_check_mode=True)
    client = connect_or_exit(module)
    server = client.info("server")
    seconds, microseconds = client.time()
    started = seconds + microseconds / 1e6 - int(server["uptime_in_seconds"]) - 1
    role = client.info("replication")["role"]
    module.exit_json(changed=False, state="running", started=started, role=role)


if __name__ == "__main__":
    main()
