"""What Sentinel reads only when it starts, compared with the lines of its file.

Sentinel rewrites its file at runtime (CONFIG REWRITE's format: string values quoted, lines it
does not know kept). The role owns some lines of it: those Sentinel cannot change at runtime
(bind, ports, TLS files, paths). `redis_sentinel_start_changes` says which of them the file has
otherwise than wanted, so the role can stop Sentinel, put them right and start it again.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

# Lines whose key is two words ("sentinel deny-scripts-reconfig yes").
TWO_WORD_KEYS = ("sentinel",)


def _words(line: str) -> list[str]:
    """A config line as Redis splits it (sdssplitargs): quotes and escapes as in shell."""
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError as error:
        raise AnsibleFilterError(f"Sentinel's file has a line Redis cannot read: {error}") from None


def _key_of(words: list[str]) -> tuple[str, list[str]]:
    if words[0].lower() in TWO_WORD_KEYS and len(words) > 1:
        return f"{words[0].lower()} {words[1].lower()}", words[2:]
    return words[0].lower(), words[1:]


def redis_sentinel_start_changes(
    content: str, wanted: Mapping[str, Any]
) -> dict[str, dict[str, str | None]]:
    """The keys of `wanted` whose line in `content` differs: {key: {"before", "after"}}.

    A wanted value of None means "no such line"; a value is compared word by word, so
    `logfile "/var/log/x"` (as Sentinel rewrites it) equals `logfile /var/log/x`. The last line
    of a key counts, as it does for Redis.
    """
    keys = {key.lower() for key in wanted}
    found: dict[str, list[str]] = {}
    for raw in content.splitlines():
        first = raw.split()[:2]
        # Only the wanted keys' lines are parsed (users' and credentials' lines are not ours).
        if not first or _key_of(first)[0] not in keys:
            continue
        key, value = _key_of(_words(raw.strip()))
        found[key] = value
    changes: dict[str, dict[str, str | None]] = {}
    for key, value in wanted.items():
        want = None if value is None else _words(str(value))
        have = found.get(key.lower())
        if have != want:
            changes[key] = {
                "before": None if have is None else " ".join(have),
                "after": None if want is None else " ".join(want),
            }
    return changes


class FilterModule:
    def filters(self):
        return {"redis_sentinel_start_changes": redis_sentinel_start_changes}
