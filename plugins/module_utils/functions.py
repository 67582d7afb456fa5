"""Function libraries kept loaded on a primary (FUNCTION LOAD REPLACE where the running code
differs). Used by the modules redis_functions and redis_runtime (libraries)."""

from __future__ import annotations

import re

from ansible_collections.redis_cache.stack.plugins.module_utils.connection import redis

NAME_RE = re.compile(r"^#!lua\s+name=([A-Za-z0-9_]+)")


class FunctionsError(Exception):
    """A library without its name line, or one the server refused."""


def libraries_by_name(libraries, option="libraries"):
    """library name -> code; FunctionsError for a source without its `#!lua name=` line."""
    wanted = {}
    for index, code in enumerate(libraries):
        match = NAME_RE.match(code)
        if not match:
            raise FunctionsError(f"{option}[{index}]: the code must start with '#!lua name=NAME'")
        wanted[match.group(1)] = code
    return wanted


def _running_code(client):
    """library name -> code, as the server runs it."""
    running = {}
    for library in client.execute_command("FUNCTION", "LIST", "WITHCODE"):
        fields = dict(zip(library[::2], library[1::2], strict=False))
        running[fields["library_name"]] = fields["library_code"]
    return running


def load_libraries(client, wanted, check_mode):
    """Load the libraries of `wanted` whose code the server does not run (only say which, in
    check mode); the names, sorted. Call it on a primary: functions replicate."""
    running = _running_code(client)
    differ = sorted(name for name, code in wanted.items() if running.get(name) != code)
    if not check_mode:
        for name in differ:
            try:
                client.execute_command("FUNCTION", "LOAD", "REPLACE", wanted[name])
            except redis.ResponseError as error:
                raise FunctionsError(f"FUNCTION LOAD of library {name}: {error}") from None
    return differ
