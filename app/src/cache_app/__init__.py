"""Cache-aside web app: GET /data/<key> from Redis, else from a slow store, cached with a TTL."""

from __future__ import annotations

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from . import config, views
from .cache import CacheAside, Store
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


def redis_client(url: str, settings: config.Settings) -> redis.Redis:
    return redis.Redis.from_url(url, **_client_options(settings))


def redis_clients(settings: config.Settings) -> tuple[redis.Redis, redis.Redis]:
    """The writer (always the primary) and the reader (a replica or the primary)."""
    if settings.sentinels:
        # Each new connection asks the Sentinels where the primary (or a replica) is now; a
        # connection to a demoted primary is dropped on its first READONLY answer.
        tls = {"ssl": True, **_tls_options(settings)} if settings.redis_tls_ca_file else {}
        sentinel = Sentinel(
            settings.sentinels,
            sentinel_kwargs={
                "password": settings.sentinel_password,
                "socket_connect_timeout": settings.redis_timeout,
                "socket_timeout": settings.redis_timeout,
                **tls,
            },
        )
        options = {**_client_options(settings), **tls}
        writer = sentinel.master_for(settings.sentinel_master, **options)
        if settings.read_from == "replica":
            return writer, sentinel.slave_for(settings.sentinel_master, **options)
        return writer, writer
    writer = redis_client(settings.redis_url, settings)
    reader = redis_client(settings.redis_read_url, settings) if settings.redis_read_url else writer
    return writer, reader


def create_app(settings: config.Settings | None = None, store: Store | None = None) -> Flask:
    settings = settings or config.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # {"key", "value", "source"}, in the seed's order
    app.config["SETTINGS"] = settings

    writer, reader = redis_clients(settings)
    cache = CacheAside(
        writer,
        reader,
        store or SlowStore(settings.slow_store_delay),
        ttl=settings.cache_ttl,
        prefix=settings.key_prefix,
        lock_ttl=settings.lock_ttl,
        lock_wait=settings.lock_wait,
    )
    views.register(app, settings, cache, (writer, reader))
    return app
