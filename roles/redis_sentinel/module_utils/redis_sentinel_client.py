"""Shared by the redis_sentinel role's modules: how they log in to a Sentinel.

As an ACL user (the admin's), with its password or, while that password rotates, the previous one.
A Sentinel deployed before it had ACL users knows the same password as its `requirepass` (the
`default` user): that login is tried last, so that such a Sentinel can be given its users.
Passwords travel in the module's arguments, never on a command line, and no message carries one.
"""

from __future__ import annotations

import traceback

try:
    import redis
except ImportError:
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()
else:
    REDIS_IMPORT_ERROR = None

LOGIN_ARGUMENT_SPEC = {
    "login_host": {"type": "str", "default": "127.0.0.1"},
    "login_port": {"type": "int", "default": 26379},
    "login_user": {"type": "str", "default": "admin"},
    "login_password": {"type": "str", "required": True, "no_log": True},
    "login_previous_password": {"type": "str", "no_log": True},
    "tls": {"type": "bool", "default": False},
    "ca_certs": {"type": "path"},
    "socket_timeout": {"type": "float", "default": 2.0},
}


class LoginError(Exception):
    """Every login was refused: the message names the user, never a password."""


def where(params):
    return f"Sentinel {params['login_host']}:{params['login_port']}"


def connect(params):
    """A redis.Redis logged in to the Sentinel, and the user it logged in as (None: `default`)."""
    passwords = []
    for password in (params["login_password"], params["login_previous_password"]):
        if password and password not in passwords:
            passwords.append(password)
    user = params["login_user"]
    for username in (user, None):
        for password in passwords:
            client = redis.Redis(
                host=params["login_host"],
                port=params["login_port"],
                username=username,
                password=password,
                ssl=params["tls"],
                ssl_ca_certs=params["ca_certs"],
                socket_timeout=params["socket_timeout"],
                socket_connect_timeout=params["socket_timeout"],
                decode_responses=True,
            )
            try:
                client.ping()
            except redis.AuthenticationError:
                continue
            except redis.ResponseError as error:
                # redis-py 4 (Debian 12's python3-redis) raises WRONGPASS as a plain ResponseError.
                if str(error).startswith("WRONGPASS"):
                    continue
                raise
            return client, username
    raise LoginError(f"{where(params)}: the login of {user} was refused")


def pairs(reply):
    """A flat [key, value, ...] reply (RESP2) or a map (RESP3) as a str -> str dict."""
    if isinstance(reply, dict):
        return {text(k): text(v) for k, v in reply.items()}
    items = [text(x) for x in reply]
    return dict(zip(items[::2], items[1::2], strict=True))


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)
