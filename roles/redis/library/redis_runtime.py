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
    login fails at once. Read-only: never changes anything.
options:
  login_host: {type: str, default: 127.0.0.1, description: Redis address.}
  login_port: {type: int, default: 6379, description: Redis port.}
  login_user: {type: str, required: true, description: ACL user allowed to run INFO.}
  login_password: {type: str, required: true, description: Its password.}
  login_previous_password: {type: str, description: Tried when Redis refuses I(login_password).}
  tls: {type: bool, default: false, description: Talk TLS (the server's certificate is verified).}
  ca_certs: {type: path, description: CA certificate that signed the server's (with tls).}
  unit: {type: str, description: The instance's systemd unit (without .service).}
  wait: {type: int, default: 60, description: Seconds to wait for a usable connection.}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.redis_admin import (
    LOGIN_ARGUMENT_SPEC,
    connect_or_exit,
)


def main():
    module = AnsibleModule(argument_spec=LOGIN_ARGUMENT_SPEC, supports_check_mode=True)
    client = connect_or_exit(module)
    server = client.info("server")
    seconds, microseconds = client.time()
    started = seconds + microseconds / 1e6 - int(server["uptime_in_seconds"]) - 1
    role = client.info("replication")["role"]
    module.exit_json(changed=False, state="running", started=started, role=role)


if __name__ == "__main__":
    main()
