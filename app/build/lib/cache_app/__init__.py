"""Cache-aside web app: GET /data/<key> from Redis, else from a slow store, cached with a TTL."""

from __future__ import annotations

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import config, views
from .cache import CacheAside, Store
from .slow_store import SlowStore


def redis_client(url: str, settings: config.Settings) -> redis.Redis:
    # Short timeouts and no retries: a dead Redis costs at most one timeout per request.
    return redis.Redis.from_url(
        url,
        password=settings.redis_password,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def create_app(settings: config.Settings | None = None, store: Store | None = None) -> Flask:
    settings = settings or config.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # {"key", "value", "source"}, in the seed's order
    app.config["SETTINGS"] = settings

    writer = redis_client(settings.redis_url, settings)
    reader = redis_client(settings.redis_read_url, settings) if settings.redis_read_url else writer
    app.extensions["redis_clients"] = {"writer": writer, "reader": reader}
    app.extensions["cache_aside"] = CacheAside(
        writer,
        reader,
        store or SlowStore(settings.slow_store_delay),
        ttl=settings.cache_ttl,
        prefix=settings.key_prefix,
        lock_ttl=settings.lock_ttl,
        lock_wait=settings.lock_wait,
    )
    views.register(app)
    return app
