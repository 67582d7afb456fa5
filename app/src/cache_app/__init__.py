"""Cache-aside web app: GET /data/<key> from Redis, else from a slow store, cached with a TTL.

The wiring, as Flask apps do it: settings (config.py, each named once), the Redis clients (a
Flask extension, clients.py), the cache built on them (cache.py), and the routes (views.py,
added by its init_app).
"""

from __future__ import annotations

from flask import Flask

from . import config, views
from .cache import CacheAside, Store
from .clients import RedisClients
from .slow_store import SlowStore


def create_app(settings: config.Settings | None = None, store: Store | None = None) -> Flask:
    settings = settings or config.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # {"key", "value", "source"}, in the seed's order
    app.config["SETTINGS"] = settings
    clients = RedisClients(app)
    cache = CacheAside.from_settings(
        settings, clients, store or SlowStore(settings.slow_store_delay)
    )
    app.extensions["cache_app"] = cache
    views.init_app(app)
    return app
