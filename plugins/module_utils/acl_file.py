"""An ACL users file brought into a running server: the users that differ from the file are
set (or deleted) at runtime, never with ACL LOAD (which crashes a Valkey 8.0 replica,
valkey-io/valkey#1832). Each line is first normalised by the server itself through a scratch
user, so a line it would refuse raises before any user changes. Used by the modules redis_acl
(state=loaded) and redis_runtime (acl_file)."""

from __future__ import annotations

import re

from ansible_collections.redis_cache.stack.plugins.module_utils.connection import (
    connect,
    redis,
    scratch_user,
)


class AclFileError(Exception):
    """The server refused the file, or a user of it: the message says where, never what (a line
    may hold a secret)."""


def load_file(module, client, path):
    """Bring the running users of the server `client` is logged in to in line with the file at
    `path`; in check mode, only say which differ. Returns the users that differed (empty:
    nothing changed) and those whose connections were closed."""
    params = module.params
    try:
        differ = users_that_differ(client, path)
    except redis.ResponseError as error:
        reason = where_refused(error)
        raise AclFileError(f"{path} holds a user the server refuses: {reason}") from None
    if not differ or module.check_mode:
        return differ, []
    try:
        closed = apply_file(client, path, differ, params["login_user"])
    except redis.RedisError as error:
        raise AclFileError(
            f"applying {', '.join(differ)} on port {params['login_port']}: {where_refused(error)}"
        ) from None
    still = users_that_differ(connect(module), path)
    if still:
        raise AclFileError(f"after applying the file, users still differ: {', '.join(still)}")
    return differ, closed


def _normalised(client, name):
    """The server's own line for a user, without its name."""
    for line in client.execute_command("ACL", "LIST"):
        words = line.split(" ", 2)
        if words[1] == name:
            return words[2] if len(words) > 2 else ""
    return None


def _wanted(client, path):
    """user name -> the server's normalised line for it, from the file's lines."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.split() for line in handle if line.strip()]
    wanted = {}
    for words in lines:
        # A new user each time: as ACL LOAD makes them (`reset` would add sanitize-payload).
        with scratch_user(client) as scratch:
            client.execute_command("ACL", "SETUSER", scratch, *words[2:])
            wanted[words[1]] = _normalised(client, scratch)
    return wanted


def users_that_differ(client, path):
    wanted = _wanted(client, path)
    running = {
        words[1]: words[2] if len(words) > 2 else ""
        for words in (line.split(" ", 2) for line in client.execute_command("ACL", "LIST"))
    }
    # As sets of words: Redis 7.0 lists subcommands in an order that changes as its command
    # table rehashes, for the same rules.
    return sorted(
        name
        for name in set(wanted) | set(running)
        if _words(wanted.get(name)) != _words(running.get(name))
    )


def _words(line):
    return None if line is None else sorted(line.split())


# What `reset` does, without the sanitize-payload flag it also sets (Redis 7.0): a changed user
# ends as the same user a fresh line of the file makes, as ACL LOAD would make it.
RESET = ("off", "resetpass", "resetkeys", "resetchannels", "clearselectors", "-@all")


def _hashes(words):
    return {word for word in words if word.startswith("#")}


def apply_file(client, path, users, login_user):
    """Give each of `users` the rules of its line in the file, or delete it if it has none.

    A user that lost a password (a rotation's last step) or was turned off gets its other
    connections closed (CLIENT KILL USER, never this one): each logs in again, with a password
    in force, as ACL LOAD did on Redis 7.0. A user the rules alone cannot bring in line (a flag
    no rule clears, such as skip-sanitize-payload on Redis 7.0) is made anew. Returns the users
    whose connections were closed.
    """
    with open(path, encoding="utf-8") as handle:
        lines = {words[1]: words[2:] for words in (line.split() for line in handle if line.strip())}
    running = {
        words[1]: words[2:]
        for words in (line.split() for line in client.execute_command("ACL", "LIST"))
    }
    closed = []
    # The login user last: a failure before it leaves this connection's rights as they were.
    for name in sorted(users, key=lambda user: user == login_user):
        if name not in lines:
            client.execute_command("ACL", "DELUSER", name)
            continue
        client.execute_command("ACL", "SETUSER", name, *RESET, *lines[name])
        before = running.get(name, [])
        lost_password = bool(_hashes(before) - _hashes(lines[name]))
        turned_off = "on" in before and "on" not in lines[name]
        if lost_password or turned_off:
            client.execute_command("CLIENT", "KILL", "USER", name, "SKIPME", "yes")
            closed.append(name)
    for name in users_that_differ(client, path):
        if name in lines and name != login_user:
            client.execute_command("ACL", "DELUSER", name)
            client.execute_command("ACL", "SETUSER", name, *lines[name])
            closed.append(name)
    return sorted(set(closed))


def where_refused(error):
    """Redis's reason, cut before it quotes the offending word."""
    text = str(error)
    line = re.search(r":(\d+):", text)
    reason = re.split(r"['\"]", text, maxsplit=1)[0].strip()
    return f"line {line.group(1)}: {reason}" if line else reason
