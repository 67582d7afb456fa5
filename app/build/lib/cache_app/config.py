"""Settings, read from the environment only (systemd's EnvironmentFile in production)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "CACHE_APP_"


class ConfigError(ValueError):
    """A setting is missing or malformed; the app refuses to start."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Optional: where reads go (a replica). Writes always go to redis_url.
    redis_read_url: str | None = None
    redis_password: str | None = field(default=None, repr=False)
    redis_timeout: float = 0.5
    cache_ttl: int = 60
    key_prefix: str = ""
    slow_store_delay: float = 2.0
    # Single flight: how long a loader holds the lock, how long others wait for its value.
    lock_ttl: float = 10.0
    lock_wait: float = 5.0
    key_max_length: int = 128
    key_pattern: str = r"[A-Za-z0-9_.:-]+"

    @property
    def key_re(self) -> re.Pattern[str]:
        return re.compile(self.key_pattern)


def _number(env: dict[str, str], name: str, kind: type, default: float) -> float:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: {raw!r} is not a {kind.__name__}") from None
    if value <= 0:
        raise ConfigError(f"{PREFIX}{name}: must be greater than 0")
    return value


def _password(env: dict[str, str]) -> str | None:
    path = env.get(PREFIX + "REDIS_PASSWORD_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ConfigError(f"{PREFIX}REDIS_PASSWORD_FILE: cannot read {path}: {error}") from None


def from_env(env: dict[str, str] | None = None) -> Settings:
    """Build settings from CACHE_APP_* variables; the password comes from a file, never the env."""
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    return Settings(
        redis_url=env.get(PREFIX + "REDIS_URL") or defaults.redis_url,
        redis_read_url=env.get(PREFIX + "REDIS_READ_URL") or None,
        redis_password=_password(env),
        redis_timeout=_number(env, "REDIS_TIMEOUT", float, defaults.redis_timeout),
        cache_ttl=int(_number(env, "CACHE_TTL", int, defaults.cache_ttl)),
        key_prefix=env.get(PREFIX + "KEY_PREFIX", defaults.key_prefix),
        slow_store_delay=_number(env, "SLOW_STORE_DELAY", float, defaults.slow_store_delay),
        lock_ttl=_number(env, "LOCK_TTL", float, defaults.lock_ttl),
        lock_wait=_number(env, "LOCK_WAIT", float, defaults.lock_wait),
        key_max_length=int(_number(env, "KEY_MAX_LENGTH", int, defaults.key_max_length)),
    )
