"""Shared by the redis role's modules: how they log in to an instance, and what a failure means.

Every module takes the same login options (address, ACL user, password, a previous password tried
while the user's own password rotates, TLS). A refused connection to a unit that systemd reports
stopped means "not running"; a port that answers plain RESP while TLS is wanted, or a server
without a users file, means "not yet configured"; anything else (still loading after a sync, a TLS
failure, a timeout, a refused connection while the unit runs) is waited on and then fails the task.
"""

from __future__ import annotations

import time
import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()
else:
    REDIS_IMPORT_ERROR = None

LOGIN_ARGUMENT_SPEC = {
    "login_host": {"type": "str", "default": "127.0.0.1"},
    "login_port": {"type": "int", "default": 6379},
    "login_user": {"type": "str", "required": True},
    "login_password": {"type": "str", "required": True, "no_log": True},
    "login_previous_password": {"type": "str", "no_log": True},
    "tls": {"type": "bool", "default": False},
    "ca_certs": {"type": "path"},
    "unit": {"type": "str"},
    "wait": {"type": "int", "default": 60},
}


class NotRunning(Exception):
    """The instance's unit is stopped: it reads its files when it starts."""


class Unconfigured(Exception):
    """It still runs as the package started it (no users file), or without the TLS it is to
    have: a restart configures it."""


class LoginError(Exception):
    """No usable connection: the message says why, without a secret."""


def _unit_active(module, unit: str | None) -> bool:
    if not unit:
        return True
    rc, _out, _err = module.run_command(["systemctl", "is-active", "--quiet", f"{unit}.service"])
    return rc == 0


def login_refused(error: Exception) -> bool:
    """A refused login; Debian 12's redis-py (4.3) reports WRONGPASS as a plain error reply."""
    return isinstance(error, redis.AuthenticationError) or "WRONGPASS" in str(error)


def _refused(error: Exception) -> bool:
    return "Connection refused" in str(error) or "Error 111" in str(error)


def client_for(params, username=None, password=None):
    """A client of the instance the login options name: TLS as asked, short timeouts, one try per
    call (callers decide how long to wait; newer redis-py retries by default)."""
    return redis.Redis(
        host=params["login_host"],
        port=params["login_port"],
        username=username,
        password=password,
        ssl=params["tls"],
        ssl_ca_certs=params["ca_certs"],
        socket_timeout=5,
        socket_connect_timeout=5,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def _unconfigured(params) -> bool:
    """True when the server lets anyone in without a password, as Debian's package starts it."""
    client = client_for(params)
    try:
        return client.ping() and not client.config_get("aclfile").get("aclfile")
    except redis.RedisError:
        return False
    finally:
        client.close()


def _answers_without_tls(params) -> bool:
    """True when the port speaks plain RESP although TLS is wanted: the package's first start, or
    an instance that turns TLS on at its next restart. Asked without credentials, so no password
    ever leaves in clear; any answer, NOAUTH included, tells a plain server from a TLS one."""
    client = client_for({**params, "tls": False, "ca_certs": None})
    try:
        client.ping()
        return True
    except (redis.ResponseError, redis.AuthenticationError):
        return True  # NOAUTH: an answer in plain RESP
    except redis.RedisError as error:
        return "NOAUTH" in str(error)
    finally:
        client.close()


def connect(module):
    """A redis.Redis that has answered PING as the login user; else NotRunning, Unconfigured or
    LoginError."""
    params = module.params
    passwords = [p for p in (params["login_password"], params["login_previous_password"]) if p]
    deadline = time.monotonic() + params["wait"]
    port = params["login_port"]
    while True:
        last = None
        for password in passwords:
            client = client_for(params, params["login_user"], password)
            try:
                client.ping()
                return client
            except redis.RedisError as error:
                if login_refused(error):
                    last = error  # try the previous password, then report it
                    continue
                if not isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
                    last = error  # LOADING, and any other answer
                    break
                if _refused(error) and not _unit_active(module, params["unit"]):
                    raise NotRunning(f"port {port}: not running") from None
                if params["tls"] and not _refused(error) and _answers_without_tls(params):
                    # TLS comes with the restart the role then gives it. Under running
                    # Sentinels, preflight has already refused such a switch (README, "TLS").
                    reason = f"port {port}: answers without TLS until it restarts"
                    raise Unconfigured(reason) from None
                last = error
                break
        if last is not None and login_refused(last):
            if _unconfigured(params):
                raise Unconfigured(f"port {port}: runs the package's defaults, without the users")
            raise LoginError(f"port {port}: the login of {params['login_user']} was refused")
        if time.monotonic() >= deadline:
            raise LoginError(f"port {port}: no answer after {params['wait']} s: {last}")
        time.sleep(1)


def connect_or_exit(module):
    """connect(), with the answers every module of the role gives: redis-py missing fails; a
    stopped instance, or one still on the package's defaults, ends the task unchanged (it reads
    its files when it starts, later in the role); a refused login fails."""
    if redis is None:
        module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)
    try:
        return connect(module)
    except NotRunning as reason:
        module.exit_json(changed=False, running=False, state="stopped", msg=str(reason))
    except Unconfigured as reason:
        module.exit_json(changed=False, running=False, state="unconfigured", msg=str(reason))
    except LoginError as reason:
        module.fail_json(msg=str(reason))
