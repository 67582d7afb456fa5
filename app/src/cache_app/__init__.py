"""Cache-aside web app: GET /data/<key> from Redis, else from a slow store, cached with a TTL."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from . import config, views
from .cache import CacheAside, Store
from .lock import Locks
from .near_cache import NearCache
from .slow_store import SlowStore


def _tls_options(settings: config.Settings) -> dict:
    """TLS with the deployment's CA: the server's certificate and its name are both checked."""
    if not settings.redis_tls_ca_file:
        return {}
    return {
        "ssl_ca_certs": settings.redis_tls_ca_file,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }


def _client_options(settings: config.Settings) -> dict:
    # Short timeouts and no retries: a dead Redis costs at most one timeout per request.
    return {
        "username": settings.redis_username,
        "password": settings.redis_password,
        "socket_connect_timeout": settings.redis_timeout,
        "socket_timeout": settings.redis_timeout,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
        **_tls_options(settings),
    }


def redis_client(url: str, settings: config.Settings, **extra: object) -> redis.Redis:
    return redis.Redis.from_url(url, **_client_options(settings), **extra)


class Clients(NamedTuple):
    writer: redis.Redis  # always the primary
    reader: redis.Redis  # a replica, or the primary
    # For the local copy's invalidation reports, from the server reads go to. RESP2: Redis 7.0
    # sends the reports to a subscribed connection there.
    listener: redis.Redis
    # The client that reads for the local copy from the server the listener found.
    source_at: Callable[[str, int], redis.Redis]


def redis_clients(settings: config.Settings) -> Clients:
    resp2 = {"protocol": 2}
    if settings.sentinels:
        # Each new connection asks the Sentinels where the primary (or a replica) is now; a
        # connection to a demoted primary is dropped on its first READONLY answer.
        tls = {"ssl": True, **_tls_options(settings)} if settings.redis_tls_ca_file else {}
        sentinel = Sentinel(
            settings.sentinels,
            sentinel_kwargs={
                "username": settings.sentinel_username,
                "password": settings.sentinel_password,
                "socket_connect_timeout": settings.redis_timeout,
                "socket_timeout": settings.redis_timeout,
                **tls,
            },
        )
        options = {**_client_options(settings), **tls}
        writer = sentinel.master_for(settings.sentinel_master, **options)
        replica = settings.read_from == "replica"
        lookup = sentinel.slave_for if replica else sentinel.master_for
        # Sentinel may name a different server to each pool: the copy reads from the one its
        # listener was given, so values and reports come from one server.
        source_at = functools.cache(lambda host, port: redis.Redis(host=host, port=port, **options))
        return Clients(
            writer,
            lookup(settings.sentinel_master, **options) if replica else writer,
            lookup(settings.sentinel_master, **options, **resp2),
            source_at,
        )
    writer = redis_client(settings.redis_url, settings)
    reader = redis_client(settings.redis_read_url, settings) if settings.redis_read_url else writer
    # One server for reads: the listener hears from it and the reader fills the copy from it.
    listener = redis_client(settings.redis_read_url or settings.redis_url, settings, **resp2)
    return Clients(writer, reader, listener, lambda *_: reader)


def create_app(settings: config.Settings | None = None, store: Store | None = None) -> Flask:
    settings = settings or config.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # {"key", "value", "source"}, in the seed's order
    app.config["SETTINGS"] = settings

    writer, reader, listener, source_at = redis_clients(settings)
    near = None
    if settings.local_cache_size:
        near = NearCache(
            listener,
            source_at,
            size=settings.local_cache_size,
            max_age=settings.local_cache_ttl,
            prefix=settings.key_prefix,
            timeout=settings.redis_timeout,
            serve_stale=settings.serve_stale,
        )
    cache = CacheAside(
        writer,
        reader,
        store or SlowStore(settings.slow_store_delay),
        ttl=settings.cache_ttl,
        prefix=settings.key_prefix,
        locks=Locks(
            writer,
            ttl=settings.lock_ttl,
            renew_interval=settings.lock_renew_interval,
            wait=settings.lock_wait,
            wait_max=settings.lock_wait_max,
        ),
        near=near,
    )
    app.extensions["cache_app"] = cache
    views.register(app, settings, cache, (writer, reader))
    return app
