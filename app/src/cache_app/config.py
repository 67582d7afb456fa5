"""Settings, read from the environment only (systemd's EnvironmentFile in production)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

PREFIX = "CACHE_APP_"


class ConfigError(ValueError):
    """A setting is missing or malformed; the app refuses to start."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Optional: where reads go (a replica). Writes always go to redis_url.
    redis_read_url: str | None = None
    # ACL user (Redis 6+); None authenticates as the default user.
    redis_username: str | None = None
    redis_password: str | None = field(default=None, repr=False)
    # Sentinel: when set, the primary (and replicas) are found by asking these, not redis_url.
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "cache"
    sentinel_password: str | None = field(default=None, repr=False)
    # With Sentinel: "replica" reads from a replica (the primary when none is up), or "primary".
    read_from: str = "primary"
    redis_timeout: float = 0.5
    # TLS: the CA that signed the servers' certificates. Set, every link (Redis, Sentinel) is TLS
    # and each server's certificate and name are checked; URLs must then be rediss://.
    redis_tls_ca_file: str | None = None
    cache_ttl: int = 60
    key_prefix: str = ""
    slow_store_delay: float = 2.0
    # Single flight: how long a loader holds the lock, how long others wait for its value.
    lock_ttl: float = 10.0
    lock_wait: float = 5.0
    # Each worker's own copy of hot keys, kept coherent by Redis's invalidation reports: at most
    # this many keys (0: off), each kept at most local_cache_ttl seconds and never past its TTL.
    local_cache_size: int = 10000
    local_cache_ttl: float = 5.0
    key_max_length: int = 128
    key_pattern: str = r"[A-Za-z0-9_.:-]+"

    @cached_property
    def key_re(self) -> re.Pattern[str]:
        return re.compile(self.key_pattern)


def _number(
    env: dict[str, str], name: str, kind: type, default: float, *, zero_ok: bool = False
) -> float:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: {raw!r} is not a {kind.__name__}") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{PREFIX}{name}: must be greater than {'or equal to ' * zero_ok}0")
    return value


def _password(env: dict[str, str], name: str = "REDIS_PASSWORD_FILE") -> str | None:
    path = env.get(PREFIX + name)
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ConfigError(f"{PREFIX}{name}: cannot read {path}: {error}") from None


def _sentinels(env: dict[str, str]) -> tuple[tuple[str, int], ...]:
    """CACHE_APP_SENTINELS: comma-separated host:port pairs."""
    raw = env.get(PREFIX + "SENTINELS", "")
    sentinels = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{PREFIX}SENTINELS: {item!r} is not host:port")
        sentinels.append((host, int(port)))
    return tuple(sentinels)


def _read_from(env: dict[str, str]) -> str:
    value = env.get(PREFIX + "READ_FROM") or "primary"
    if value not in ("primary", "replica"):
        raise ConfigError(f"{PREFIX}READ_FROM: {value!r} is not primary or replica")
    return value


def _tls_ca_file(env: dict[str, str], urls: tuple[str | None, ...]) -> str | None:
    name = PREFIX + "REDIS_TLS_CA_FILE"
    path = env.get(name) or None
    if path is None:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"{name}: {path} is not a file")
    plain = [url for url in urls if url and not url.startswith("rediss://")]
    if plain:
        raise ConfigError(f"{name} is set: Redis URLs must be rediss://, not {plain[0]}")
    return path


def from_env(env: dict[str, str] | None = None) -> Settings:
    """Build settings from CACHE_APP_* variables; the password comes from a file, never the env."""
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    redis_url = env.get(PREFIX + "REDIS_URL") or defaults.redis_url
    redis_read_url = env.get(PREFIX + "REDIS_READ_URL") or None
    sentinels = _sentinels(env)
    return Settings(
        redis_url=redis_url,
        redis_read_url=redis_read_url,
        redis_username=env.get(PREFIX + "REDIS_USERNAME") or None,
        redis_password=_password(env),
        sentinels=sentinels,
        sentinel_master=env.get(PREFIX + "SENTINEL_MASTER") or defaults.sentinel_master,
        sentinel_password=_password(env, "SENTINEL_PASSWORD_FILE"),
        read_from=_read_from(env),
        # With Sentinel the URLs are not used.
        redis_tls_ca_file=_tls_ca_file(env, () if sentinels else (redis_url, redis_read_url)),
        redis_timeout=_number(env, "REDIS_TIMEOUT", float, defaults.redis_timeout),
        cache_ttl=int(_number(env, "CACHE_TTL", int, defaults.cache_ttl)),
        key_prefix=env.get(PREFIX + "KEY_PREFIX", defaults.key_prefix),
        slow_store_delay=_number(env, "SLOW_STORE_DELAY", float, defaults.slow_store_delay),
        lock_ttl=_number(env, "LOCK_TTL", float, defaults.lock_ttl),
        lock_wait=_number(env, "LOCK_WAIT", float, defaults.lock_wait),
        local_cache_size=int(
            _number(env, "LOCAL_CACHE_SIZE", int, defaults.local_cache_size, zero_ok=True)
        ),
        local_cache_ttl=_number(env, "LOCAL_CACHE_TTL", float, defaults.local_cache_ttl),
        key_max_length=int(_number(env, "KEY_MAX_LENGTH", int, defaults.key_max_length)),
    )
