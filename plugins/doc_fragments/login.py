"""The login options every module of the collection shares (plugins/module_utils/connection.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    type: str
    default: 127.0.0.1
    description: Address of the server or Sentinel.
  login_password:
    type: str
    required: true
    description: Password of I(login_user).
  login_previous_password:
    type: str
    description:
      - Tried when the server refuses I(login_password); the user's own password is rotating
        and the running service knows only the previous one until the change reaches it.
  tls:
    type: bool
    default: false
    description: Talk TLS; the service's certificate is verified against I(ca_certs).
  ca_certs:
    type: path
    description: CA certificate that signed the service's (with I(tls)).
requirements:
  - redis-py on the host (Debian's C(python3-redis))
notes:
  - Passwords travel in the module's arguments, never on a command line, and no message or
    result carries one.
"""
