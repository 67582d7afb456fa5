"""The redis_acl_errors filter: why redis_acl_rules and redis_acl_passwords can't be written
to an ACL file, before any host changes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.redis_cache.stack.plugins.filter.passwords import redis_password_errors

# ACL rule tokens the role accepts (Redis 7.0 ACL SETUSER syntax, minus passwords: those come from
# redis_acl_passwords and are written hashed). Anything else is refused before any host changes.
ACL_USER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ACL_TOKEN_RES = (
    re.compile(r"^(on|off|allkeys|allchannels|allcommands|nocommands|resetkeys|resetchannels)$"),
    re.compile(r"^(%R|%W|%RW)?~[^\s]+$"),  # key patterns, optionally read- or write-only
    re.compile(r"^&[^\s]+$"),  # channel patterns
    re.compile(r"^[+-]@[a-z]+$"),  # command categories
    re.compile(r"^[+-][a-z]+(\|[a-z-]+)?$"),  # commands and subcommands
)


def redis_acl_errors(
    rules: Any,
    passwords: Any,
    admin_user: str,
    replication_user: str,
    weak: Sequence[str],
) -> list[str]:
    """Why redis_acl_rules / redis_acl_passwords can't be written to an ACL file."""
    if not isinstance(rules, Mapping) or not rules:
        return ["redis_acl_rules: give a mapping of user name to rules"]
    passwords = passwords if isinstance(passwords, Mapping) else {}
    errors = []
    for name in (admin_user, replication_user):
        if name not in rules:
            errors.append(
                f"redis_acl_rules: user {name!r} is missing (Ansible and replicas use it)"
            )
    for name, rule in rules.items():
        if name == "default":
            errors.append("redis_acl_rules: 'default' is always off; give your users other names")
            continue
        if not isinstance(name, str) or not ACL_USER_RE.match(name):
            errors.append(f"redis_acl_rules: {name!r} is not a valid user name (A-Z a-z 0-9 _ -)")
            continue
        if not isinstance(rule, str):
            errors.append(f"redis_acl_rules.{name}: rules must be a string")
            continue
        words = rule.split()
        for position, token in enumerate(words, start=1):
            if token.startswith((">", "<", "#", "!")) or token in ("nopass", "resetpass", "reset"):
                # Never echo what may be a password.
                shown = token if token.isalpha() else f"{token[:1]}..."
                errors.append(
                    f"redis_acl_rules.{name}: {shown!r}: password rules are not allowed here; "
                    "set the password in redis_acl_passwords"
                )
            elif not any(pattern.match(token) for pattern in ACL_TOKEN_RES):
                # By position only: a password pasted without its ">" must not reach the log.
                errors.append(
                    f"redis_acl_rules.{name}: word {position} of {len(words)} is not an ACL rule "
                    "the role can validate"
                )
        if name != admin_user:
            errors.extend(
                redis_password_errors(passwords.get(name), f"redis_acl_passwords.{name}", weak)
            )
    return errors


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"redis_acl_errors": redis_acl_errors}
