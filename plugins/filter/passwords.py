"""The redis_password_errors filter: why a password is unusable (missing, short, known weak,
or with characters the server's files can't hold), never echoing it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# Always refused, whatever the inventory adds: the tutorial's password first, then the usual ones.
KNOWN_WEAK = ("Test1234", "foobared", "password", "changeme", "redis", "sentinel", "admin")


def _is_weak(password: str, weak: Sequence[str]) -> bool:
    """A known or listed weak password, alone or repeated (a weak word twice is no stronger)."""
    lowered = password.lower()
    for candidate in {w.lower() for w in (*KNOWN_WEAK, *weak) if w}:
        repeats, rest = divmod(len(lowered), len(candidate))
        if rest == 0 and lowered == candidate * repeats:
            return True
    return False


def redis_password_errors(
    password: Any, variable: str, weak: Sequence[str] = (), min_length: int = 16
) -> list[str]:
    """Return why a password is unusable, without ever echoing it."""
    if not isinstance(password, str) or not password:
        return [f"{variable}: required (keep it in a vault; see README)"]
    if len(password) < min_length:
        return [f"{variable}: must be at least {min_length} characters"]
    if _is_weak(password, weak):
        return [f"{variable}: is a known weak password"]
    if re.search(r'[\s"\'\\]', password):
        return [f"{variable}: must not contain whitespace, quotes or backslashes"]
    return []


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"redis_password_errors": redis_password_errors}
