"""Settings, read from the environment only (systemd's EnvironmentFile in production)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

PREFIX = "CACHE_APP_"

# gunicorn's limit_request_line (gunicorn_conf.py sets it from here): the longest request line,
# CRLF not counted. Any key the app accepts fits in it, behind the longest method /data/ answers.
REQUEST_LINE_LIMIT = 4094
KEY_MAX_LENGTH_LIMIT = REQUEST_LINE_LIMIT - len("OPTIONS /data/ HTTP/1.1")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    # Sentinel's ACL user for the app (its default user is off), and that user's password.
    sentinel_username: str | None = None
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
    # Single flight: a lock lives lock_ttl seconds unless its loader renews it, which a loader
    # does every lock_renew_interval seconds while its load runs. A waiter that sees the lock
    # neither renewed nor changing hands for lock_wait seconds takes it over (its holder died);
    # a waiter never waits longer than lock_wait_max in all, then loads without the lock.
    lock_ttl: float = 10.0
    lock_renew_interval: float = 1.0
    lock_wait: float = 3.0
    lock_wait_max: float = 10.0
    # Each worker's own copy of hot keys, kept coherent by Redis's invalidation reports: at most
    # this many keys (0: off), each kept at most local_cache_ttl seconds and never past its TTL.
    local_cache_size: int = 10000
    local_cache_ttl: float = 5.0
    # While Redis cannot be used (down, hung), answer the keys the local copy held, each until
    # its TTL in Redis, as X-Cache: STALE; off: such requests go to the store (BYPASS).
    serve_stale: bool = True
    key_max_length: int = 128
    key_pattern: str = r"[A-Za-z0-9_.:-]+"
    # Clients whose address is in one of these may read /metrics; none: nobody may.
    metrics_allowed_networks: tuple[IPNetwork, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )

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


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(PREFIX + name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "yes", "on", "1"):
        return True
    if raw.lower() in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{PREFIX}{name}: {raw!r} is not true or false")


def _sentinel_host(host: str) -> str | None:
    """A name or IPv4 address as given; an IPv6 address only in brackets, given without them."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            return None
    return host if host and not set(host) & set(":[]") else None


def _sentinels(env: dict[str, str]) -> tuple[tuple[str, int], ...]:
    """CACHE_APP_SENTINELS: comma-separated host:port pairs, an IPv6 address in brackets."""
    raw = env.get(PREFIX + "SENTINELS", "")
    sentinels = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, sep, port = item.rpartition(":")
        address = _sentinel_host(host)
        if not sep or address is None or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{PREFIX}SENTINELS: {item!r} is not host:port or [IPv6]:port")
        sentinels.append((address, int(port)))
    return tuple(sentinels)


def _read_from(env: dict[str, str]) -> str:
    value = env.get(PREFIX + "READ_FROM") or "primary"
    if value not in ("primary", "replica"):
        raise ConfigError(f"{PREFIX}READ_FROM: {value!r} is not primary or replica")
    return value


def _key_max_length(env: dict[str, str], default: int) -> int:
    value = int(_number(env, "KEY_MAX_LENGTH", int, default))
    if value > KEY_MAX_LENGTH_LIMIT:
        raise ConfigError(
            f"{PREFIX}KEY_MAX_LENGTH: at most {KEY_MAX_LENGTH_LIMIT}, or a request for the longest"
            f" key would not fit in gunicorn's {REQUEST_LINE_LIMIT}-byte request line"
        )
    return value


def _metrics_allowed_networks(
    env: dict[str, str], default: tuple[IPNetwork, ...]
) -> tuple[IPNetwork, ...]:
    """CACHE_APP_METRICS_ALLOWED_NETWORKS: comma-separated networks (CIDR); unset: the default,
    empty: no client may read /metrics."""
    name = PREFIX + "METRICS_ALLOWED_NETWORKS"
    raw = env.get(name)
    if raw is None:
        return default
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as error:
            raise ConfigError(
                f"{name}: {item!r} is not a network such as 10.0.0.0/24: {error}"
            ) from None
    return tuple(networks)


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


def _lock_timings(env: dict[str, str], defaults: Settings) -> dict[str, float]:
    """The single-flight lock's timings, refused when they cannot work together."""
    timings = {
        name: _number(env, name.upper(), float, getattr(defaults, name))
        for name in ("lock_ttl", "lock_renew_interval", "lock_wait", "lock_wait_max")
    }
    ttl, renew, wait, wait_max = timings.values()
    if ttl < 2 * renew:
        raise ConfigError(
            f"{PREFIX}LOCK_TTL ({ttl:g}) must be at least twice {PREFIX}LOCK_RENEW_INTERVAL "
            f"({renew:g}): a live loader's lock would expire between renewals"
        )
    if wait <= renew:
        raise ConfigError(
            f"{PREFIX}LOCK_WAIT ({wait:g}) must be longer than {PREFIX}LOCK_RENEW_INTERVAL "
            f"({renew:g}): waiters would take the lock from a loader that is still working"
        )
    if wait_max <= wait:
        raise ConfigError(
            f"{PREFIX}LOCK_WAIT_MAX ({wait_max:g}) must be longer than {PREFIX}LOCK_WAIT "
            f"({wait:g}): waiters would give up before taking over a dead loader's lock"
        )
    return timings


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
        sentinel_username=env.get(PREFIX + "SENTINEL_USERNAME") or None,
        sentinel_password=_password(env, "SENTINEL_PASSWORD_FILE"),
        read_from=_read_from(env),
        # With Sentinel the URLs are not used.
        redis_tls_ca_file=_tls_ca_file(env, () if sentinels else (redis_url, redis_read_url)),
        redis_timeout=_number(env, "REDIS_TIMEOUT", float, defaults.redis_timeout),
        cache_ttl=int(_number(env, "CACHE_TTL", int, defaults.cache_ttl)),
        key_prefix=env.get(PREFIX + "KEY_PREFIX", defaults.key_prefix),
        slow_store_delay=_number(env, "SLOW_STORE_DELAY", float, defaults.slow_store_delay),
        **_lock_timings(env, defaults),
        local_cache_size=int(
            _number(env, "LOCAL_CACHE_SIZE", int, defaults.local_cache_size, zero_ok=True)
        ),
        local_cache_ttl=_number(env, "LOCAL_CACHE_TTL", float, defaults.local_cache_ttl),
        serve_stale=_flag(env, "SERVE_STALE", defaults.serve_stale),
        key_max_length=_key_max_length(env, defaults.key_max_length),
        metrics_allowed_networks=_metrics_allowed_networks(env, defaults.metrics_allowed_networks),
    )
