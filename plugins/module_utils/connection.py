"""How the collection's modules connect and log in, to a Redis (or Valkey) server or to a Sentinel.

Every module takes the same login options (address, ACL user, password, a previous password
tried while the user's own password rotates, TLS); `login_argument_spec` gives them with the
defaults of the kind of service, and the doc fragment `redis_cache.stack.login` documents them.
Passwords travel in the module's arguments, never on a command line, and no message carries one.

A server: a refused connection to a unit that systemd reports stopped means "not running"; a port
that answers plain RESP while TLS is wanted, or a server without a users file, means "not yet
configured"; anything else (still loading after a sync, a TLS failure, a timeout, a refused
connection while the unit runs) is waited on and then fails the task.

A Sentinel: logged in as an ACL user (the admin's); one deployed before it had ACL users knows the
same password as its `requirepass` (the `default` user), tried last, so that it can be given its
users.
"""

from __future__ import annotations

import secrets
import time
import traceback
from contextlib import contextmanager

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

# Seconds to connect and to wait for an answer, for a server (a Sentinel's is an option).
SERVER_TIMEOUT = 5


def login_argument_spec(kind: str) -> dict:
    """The login options of a module of `kind` ("server" or "sentinel")."""
    spec = {
        "login_host": {"type": "str", "default": "127.0.0.1"},
        "login_password": {"type": "str", "required": True, "no_log": True},
        "login_previous_password": {"type": "str", "no_log": True},
        "tls": {"type": "bool", "default": False},
        "ca_certs": {"type": "path"},
    }
    if kind == "server":
        spec.update(
            login_port={"type": "int", "default": 6379},
            login_user={"type": "str", "required": True},
            unit={"type": "str"},
            wait={"type": "int", "default": 60},
        )
    else:
        spec.update(
            login_port={"type": "int", "default": 26379},
            login_user={"type": "str", "default": "admin"},
            socket_timeout={"type": "float", "default": 2.0},
        )
    return spec


def require_redis(module) -> None:
    """Fail the task when redis-py is missing on the host (python3-redis)."""
    if redis is None:
        module.fail_json(msg=missing_required_lib("redis"), exception=REDIS_IMPORT_ERROR)


def client_for(params, username=None, password=None, timeout=SERVER_TIMEOUT, once=True):
    """A client of the service the login options name: TLS as asked (the certificate checked
    against ca_certs), short timeouts and, with `once`, one try per call (callers decide how long
    to wait; newer redis-py retries by default)."""
    options = {"retry": Retry(NoBackoff(), 0)} if once else {}
    return redis.Redis(
        host=params["login_host"],
        port=params["login_port"],
        username=username,
        password=password,
        ssl=params["tls"],
        ssl_ca_certs=params["ca_certs"],
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        **options,
    )


def login_refused(error: Exception) -> bool:
    """A refused login; Debian 12's redis-py (4.3) reports WRONGPASS as a plain error reply."""
    return isinstance(error, redis.AuthenticationError) or "WRONGPASS" in str(error)


def _passwords(params) -> list[str]:
    """The password, then the previous one, each once."""
    found = []
    for password in (params["login_password"], params["login_previous_password"]):
        if password and password not in found:
            found.append(password)
    return found


@contextmanager
def scratch_user(client):
    """The name of a user that does not exist yet, deleted afterwards: rules are tried on it (its
    rules normalised by the server itself) without touching a real user."""
    name = f"ansible-scratch-{secrets.token_hex(6)}"
    try:
        yield name
    finally:
        client.execute_command("ACL", "DELUSER", name)


# A server ------------------------------------------------------------------------------------


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


def _refused(error: Exception) -> bool:
    return "Connection refused" in str(error) or "Error 111" in str(error)


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
                    # Sentinels, preflight has already refused such a switch (docs/tls.md).
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
    """connect(), with the answers every server module gives: redis-py missing fails; a stopped
    instance, or one still on the package's defaults, ends the task unchanged (it reads its files
    when it starts, later in the role); a refused login fails."""
    require_redis(module)
    try:
        return connect(module)
    except NotRunning as reason:
        module.exit_json(changed=False, running=False, state="stopped", msg=str(reason))
    except Unconfigured as reason:
        module.exit_json(changed=False, running=False, state="unconfigured", msg=str(reason))
    except LoginError as reason:
        module.fail_json(msg=str(reason))


# A Sentinel ----------------------------------------------------------------------------------


def where(params):
    return f"Sentinel {params['login_host']}:{params['login_port']}"


def connect_sentinel(params):
    """A redis.Redis logged in to the Sentinel, and the user it logged in as (None: `default`);
    LoginError when every login is refused."""
    user = params["login_user"]
    for username in (user, None):
        for password in _passwords(params):
            client = client_for(
                params, username, password, timeout=params["socket_timeout"], once=False
            )
            try:
                client.ping()
            except redis.RedisError as error:
                if login_refused(error):
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
