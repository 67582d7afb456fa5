#!/usr/bin/python
"""Ansible module: make a running Redis reload its ACL file (ACL LOAD), without a restart."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_acl_load
short_description: Run ACL LOAD on a Redis instance and report why it failed
description:
  - Redis checks the whole file first; a file it refuses leaves the users in force unchanged, and
    the module fails with Redis's reason. An instance that does not answer is left alone (it
    reads the file when it starts). Talks to Redis with redis-py (C(python3-redis)); the
    password travels in the module's arguments, never on a command line.
options:
  login_host: {type: str, default: 127.0.0.1, description: Redis address.}
  login_port: {type: int, default: 6379, description: Redis port.}
  login_user: {type: str, required: true, description: ACL user allowed to run ACL LOAD.}
  tls: {type: bool, default: false, description: Talk TLS (the server's certificate is verified).}
  ca_certs: {type: path, description: CA certificate that signed the server's (with tls).}
  login_password: {type: str, required: true, description: Its password.}
  login_previous_password:
    type: str
    description: Tried when Redis refuses I(login_password) (the user's own password is rotating
      and the running instance knows only the previous one until this load).
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import redis
except ImportError:
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()
else:
    REDIS_IMPORT_ERROR = None


def main():
    module = AnsibleModule(
        argument_spec={
            "login_host": {"type": "str", "default": "127.0.0.1"},
            "login_port": {"type": "int", "default": 6379},
            "login_user": {"type": "str", "required": True},
            "tls": {"type": "bool", "default": False},
            "ca_certs": {"type": "path"},
            "login_password": {"type": "str", "required": True, "no_log": True},
            "login_previous_password": {"type": "str", "no_log": True},
        },
        supports_check_mode=True,
    )
    if redis is None:
        module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)
    if module.check_mode:
        module.exit_json(changed=True)
    params = module.params
    passwords = [params["login_password"], params["login_previous_password"]]
    for password in filter(None, passwords):
        client = redis.Redis(
            host=params["login_host"],
            port=params["login_port"],
            username=params["login_user"],
            password=password,
            ssl=params["tls"],
            ssl_ca_certs=params["ca_certs"],
            socket_timeout=5,
            socket_connect_timeout=5,
        )
        try:
            client.execute_command("ACL", "LOAD")
            break
        except redis.RedisError as error:
            # Debian 12's redis-py (4.3) reports a refused login as a plain error reply.
            if isinstance(error, redis.AuthenticationError) or "WRONGPASS" in str(error):
                refused = error
            elif isinstance(error, redis.ConnectionError):
                # Not running: it reads the file when it starts (the role's service phase does).
                module.exit_json(changed=False, running=False, msg=f"not loaded: {error}")
            else:
                module.fail_json(msg=f"ACL LOAD on port {params['login_port']}: {error}")
    else:
        module.fail_json(msg=f"ACL LOAD on port {params['login_port']}: {refused}")
    module.exit_json(changed=True, running=True)


if __name__ == "__main__":
    main()
