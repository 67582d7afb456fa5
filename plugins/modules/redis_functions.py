#!/usr/bin/python
"""Ansible module: keep a Redis primary's function libraries (FUNCTION LOAD) as given."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_functions
short_description: Load Redis function libraries on a primary where the running code differs
description:
  - Compares each library's code with what the server runs (FUNCTION LIST WITHCODE) and loads
    only what differs, with FUNCTION LOAD REPLACE. Clients then call the functions with FCALL and
    need no general scripting right (EVAL, SCRIPT).
  - Functions replicate; on a replica nothing is loaded, and the result says so. A failover keeps
    them, since the promoted replica holds them already.
  - A refused connection to a unit that systemd reports stopped means "not running" (unchanged);
    other failures are waited on for I(wait) seconds, then fail.
author: Redis cache-aside project (!UNKNOWN)
extends_documentation_fragment:
  - redis_cache.stack.login
options:
  libraries:
    type: list
    elements: str
    required: true
    description: Library sources, each starting with its C(#!lua name=...) line.
  login_port: {type: int, default: 6379, description: Redis port.}
  login_user: {type: str, required: true, description: ACL user allowed to load functions.}
  unit: {type: str, description: The instance's systemd unit (without .service).}
  wait: {type: int, default: 60, description: Seconds to wait for a usable connection.}
"""

EXAMPLES = r"""
- name: Keep the app's function library loaded on the primary
  redis_cache.stack.redis_functions:
    libraries:
      - "{{ lookup('ansible.builtin.file', 'cache.lua') }}"
    login_user: admin
    login_password: "{{ vault_redis_password }}"
    unit: redis-server
"""

RETURN = r"""
running:
  description: False when the instance is stopped or still runs the package's defaults.
  returned: always
  type: bool
primary:
  description: False on a replica, where nothing is loaded (functions replicate).
  returned: when running
  type: bool
loaded:
  description: Names of the libraries loaded because their code differed.
  returned: on a primary
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.redis_cache.stack.plugins.module_utils.connection import (
    connect_or_exit,
    login_argument_spec,
)
from ansible_collections.redis_cache.stack.plugins.module_utils.functions import (
    FunctionsError,
    libraries_by_name,
    load_libraries,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "libraries": {"type": "list", "elements": "str", "required": True},
            **login_argument_spec("server"),
        },
        supports_check_mode=True,
    )
    try:
        wanted = libraries_by_name(module.params["libraries"])
    except FunctionsError as error:
        module.fail_json(msg=str(error))
    client = connect_or_exit(module)

    if client.execute_command("ROLE")[0] != "master":
        module.exit_json(changed=False, running=True, primary=False)
    try:
        loaded = load_libraries(client, wanted, module.check_mode)
    except FunctionsError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=bool(loaded), running=True, primary=True, loaded=loaded)


if __name__ == "__main__":
    main()
