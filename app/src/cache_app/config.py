"""Settings, read from the environment only (systemd's EnvironmentFile in production)."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

PREFIX = "CACHE_APP_"

# gunicorn's limit_request_line (gunicorn_conf.py sets it from here): the longest request line,
# CRLF not counted. Any key the app accepts fits in it, behind the longest method /data/ answers.
REQUEST_LINE_LIMIT = 4094
KEY_MAX_LENGTH_LIMIT = REQUEST_LINE_LIMIT - len("OPTIONS /data/ HTTP/1.1")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting is missing or malformed; the app refuses to start."""


def _setting(default: object, parse: Callable[[str, str], object], **options: object) -> Any:
    """A setting, read from CACHE_APP_<NAME> (its field's name in capitals, unless `env` names
    the variable) by `parse(raw, variable)`; unset or empty keeps the default unless
    `empty_is_unset` is False."""
    return field(
        default=default,
        metadata={
            "parse": parse,
            "env": options.pop("env", None),
            "empty_is_unset": options.pop("empty_is_unset", True),
        },
        **options,
    )


def _text(raw: str, _variable: str) -> str:
    return raw


def _number(kind: type, *, zero_ok: bool = False) -> Callable[[str, str], float]:
    def parse(raw: str, variable: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{variable}: {raw!r} is not a {kind.__name__}") from None
        if value < 0 or (value == 0 and not zero_ok):
            raise ConfigError(f"{variable}: must be greater than {'or equal to ' * zero_ok}0")
        return value

    return parse


def _password_file(raw: str, variable: str) -> str:
    try:
        return Path(raw).read_text().strip()
    except OSError as error:
        raise ConfigError(f"{variable}: cannot read {raw}: {error}") from None


def _flag(raw: str, variable: str) -> bool:
    if raw.lower() in ("true", "yes", "on", "1"):
        return True
    if raw.lower() in ("false", "no", "off", "0"):
        return False
    raise ConfigError(f"{variable}: {raw!r} is not true or false")


def _sentinel_host(host: str) -> str | None:
    """A name or IPv4 address as given; an IPv6 address only in brackets, given without them."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            return None
    return host if host and not set(host) & set(":[]") else None


def _sentinels(raw: str, variable: str) -> tuple[tuple[str, int], ...]:
    """Comma-separated host:port pairs, an IPv6 address in brackets."""
    sentinels = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, sep, port = item.rpartition(":")
        address = _sentinel_host(host)
        if not sep or address is None or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{variable}: {item!r} is not host:port or [IPv6]:port")
        sentinels.append((address, int(port)))
    return tuple(sentinels)


def _read_from(raw: str, variable: str) -> str:
    if raw not in ("primary", "replica"):
        raise ConfigError(f"{variable}: {raw!r} is not primary or replica")
    return raw


def _key_max_length(raw: str, variable: str) -> int:
    value = int(_number(int)(raw, variable))
    if value > KEY_MAX_LENGTH_LIMIT:
        raise ConfigError(
            f"{variable}: at most {KEY_MAX_LENGTH_LIMIT}, or a request for the longest"
            f" key would not fit in gunicorn's {REQUEST_LINE_LIMIT}-byte request line"
        )
    return value


def _networks(raw: str, variable: str) -> tuple[IPNetwork, ...]:
    """Comma-separated networks (CIDR); empty: none."""
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as error:
            raise ConfigError(
                f"{variable}: {item!r} is not a network such as 10.0.0.0/24: {error}"
            ) from None
    return tuple(networks)


def _file(raw: str, variable: str) -> str:
    if not Path(raw).is_file():
        raise ConfigError(f"{variable}: {raw} is not a file")
    return raw


_INT = _number(int)
_FLOAT = _number(float)


@dataclass(frozen=True)
class Settings:
    """Every setting, each named once: its field, its default, how CACHE_APP_<NAME> is read."""

    redis_url: str = _setting("redis://127.0.0.1:6379/0", _text)
    # Optional: where reads go (a replica). Writes always go to redis_url.
    redis_read_url: str | None = _setting(None, _text)
    # ACL user (Redis 6+); None authenticates as the default user.
    redis_username: str | None = _setting(None, _text)
    # From a file, never from the environment.
    redis_password: str | None = _setting(
        None, _password_file, env="REDIS_PASSWORD_FILE", repr=False
    )
    # Sentinel: when set, the primary (and replicas) are found by asking these, not redis_url.
    sentinels: tuple[tuple[str, int], ...] = _setting((), _sentinels)
    sentinel_master: str = _setting("cache", _text)
    # Sentinel's ACL user for the app (its default user is off), and that user's password.
    sentinel_username: str | None = _setting(None, _text)
    sentinel_password: str | None = _setting(
        None, _password_file, env="SENTINEL_PASSWORD_FILE", repr=False
    )
    # With Sentinel: "replica" reads from a replica (the primary when none is up), or "primary".
    read_from: str = _setting("primary", _read_from)
    redis_timeout: float = _setting(0.5, _FLOAT)
    # TLS: the CA that signed the servers' certificates. Set, every link (Redis, Sentinel) is TLS
    # and each server's certificate and name are checked; URLs must then be rediss://.
    redis_tls_ca_file: str | None = _setting(None, _file)
    cache_ttl: int = _setting(60, _INT)
    key_prefix: str = _setting("", _text)
    slow_store_delay: float = _setting(2.0, _FLOAT)
    # Single flight: a lock lives lock_ttl seconds unless its loader renews it, which a loader
    # does every lock_renew_interval seconds while its load runs. A waiter that sees the lock
    # neither renewed nor changing hands for lock_wait seconds takes it over (its holder died);
    # a waiter never waits longer than lock_wait_max in all, then loads without the lock.
    lock_ttl: float = _setting(10.0, _FLOAT)
    lock_renew_interval: float = _setting(1.0, _FLOAT)
    lock_wait: float = _setting(3.0, _FLOAT)
    lock_wait_max: float = _setting(10.0, _FLOAT)
    # Each worker's own copy of hot keys, kept coherent by Redis's invalidation reports: at most
    # this many keys (0: off), each kept at most local_cache_ttl seconds and never past its TTL.
    local_cache_size: int = _setting(10000, _number(int, zero_ok=True))
    local_cache_ttl: float = _setting(5.0, _FLOAT)
    # While Redis cannot be used (down, hung), answer the keys the local copy held, each until
    # its TTL in Redis, as X-Cache: STALE; off: such requests go to the store (BYPASS).
    serve_stale: bool = _setting(True, _flag)
    key_max_length: int = _setting(128, _key_max_length)
    # Not a setting: "|" (the lock names' separator, cache.py) must stay outside it.
    key_pattern: str = r"[A-Za-z0-9_.:-]+"
    # Clients whose address is in one of these may read /metrics; empty: nobody may.
    metrics_allowed_networks: tuple[IPNetwork, ...] = _setting(
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        _networks,
        empty_is_unset=False,
    )

    @cached_property
    def key_re(self) -> re.Pattern[str]:
        return re.compile(self.key_pattern)


def variable(name: str) -> str:
    """The environment variable a setting is read from."""
    (setting,) = (f for f in fields(Settings) if f.name == name)
    return PREFIX + (setting.metadata["env"] or name.upper())


def _check_lock_timings(settings: Settings) -> None:
    """The single-flight lock's timings, refused when they cannot work together."""
    ttl, renew = settings.lock_ttl, settings.lock_renew_interval
    wait, wait_max = settings.lock_wait, settings.lock_wait_max
    if ttl < 2 * renew:
        raise ConfigError(
            f"{variable('lock_ttl')} ({ttl:g}) must be at least twice "
            f"{variable('lock_renew_interval')} ({renew:g}): a live loader's lock would expire"
            " between renewals"
        )
    if wait <= renew:
        raise ConfigError(
            f"{variable('lock_wait')} ({wait:g}) must be longer than "
            f"{variable('lock_renew_interval')} ({renew:g}): waiters would take the lock from a"
            " loader that is still working"
        )
    if wait_max <= wait:
        raise ConfigError(
            f"{variable('lock_wait_max')} ({wait_max:g}) must be longer than "
            f"{variable('lock_wait')} ({wait:g}): waiters would give up before taking over a"
            " dead loader's lock"
        )


def _check_tls(settings: Settings) -> None:
    """With a CA, the Redis URLs must be rediss:// (with Sentinel they are not used)."""
    if not settings.redis_tls_ca_file or settings.sentinels:
        return
    urls = (settings.redis_url, settings.redis_read_url)
    plain = [url for url in urls if url and not url.startswith("rediss://")]
    if plain:
        raise ConfigError(
            f"{variable('redis_tls_ca_file')} is set: Redis URLs must be rediss://, not {plain[0]}"
        )


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from CACHE_APP_* variables; passwords come from files, never the env."""
    env = os.environ if env is None else env
    values = {}
    for setting in fields(Settings):
        if "parse" not in setting.metadata:
            continue
        name = variable(setting.name)
        raw = env.get(name)
        if raw is None or (raw == "" and setting.metadata["empty_is_unset"]):
            continue
        values[setting.name] = setting.metadata["parse"](raw, name)
    settings = Settings(**values)
    _check_lock_timings(settings)
    _check_tls(settings)
    return settings
