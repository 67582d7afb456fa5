"""The three WSGI apps the benchmark compares, each counting its slow-store calls in Redis.

- ours: this project's app (cache_app.create_app) as deployed, each worker's local copy on;
- ours_no_local: the same with the local copy off (CACHE_APP_LOCAL_CACHE_SIZE=0): every hit
  asks Redis;
- flask_caching: the same endpoint written with Flask-Caching's RedisCache (cache.get/cache.set),
  what a user would otherwise pick;
- bare_get: the bare route plus one redis-py GET, the floor of any design that asks Redis on a hit;
- bare: a Flask JSON route that touches neither Redis nor the store (the ceiling).

Settings come from the same CACHE_APP_* environment as the app.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

import redis
from flask import Flask, jsonify
from flask_caching import Cache

from cache_app import config, create_app
from cache_app.clients import redis_client
from cache_app.slow_store import SlowStore

SETTINGS = config.from_env()
COUNTER = "bench:slow_store_calls:"


class CountingStore(SlowStore):
    """The app's slow store, plus an INCR per call so calls are counted across workers."""

    def __init__(self, name: str, client: redis.Redis) -> None:
        super().__init__(SETTINGS.slow_store_delay)
        self.counter = COUNTER + name
        self.client = client

    def load(self, key: str) -> str:
        self.client.incr(self.counter)
        return super().load(key)


def _ours() -> Flask:
    store = CountingStore("ours", redis_client(SETTINGS.redis_url, SETTINGS))
    return create_app(SETTINGS, store=store)


def _ours_no_local() -> Flask:
    store = CountingStore("ours_no_local", redis_client(SETTINGS.redis_url, SETTINGS))
    return create_app(dataclasses.replace(SETTINGS, local_cache_size=0), store=store)


def _flask_caching() -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False
    cache = Cache(
        app,
        config={
            "CACHE_TYPE": "RedisCache",
            # Flask-Caching ignores CACHE_REDIS_PASSWORD when given a URL: the password goes in it.
            "CACHE_REDIS_URL": SETTINGS.redis_url.replace(
                "redis://",
                f"redis://{quote(SETTINGS.redis_username or '', safe='')}"
                f":{quote(SETTINGS.redis_password or '', safe='')}@",
                1,
            ),
            "CACHE_DEFAULT_TIMEOUT": SETTINGS.cache_ttl,
            "CACHE_KEY_PREFIX": "fc:",
            "CACHE_OPTIONS": {
                "socket_timeout": SETTINGS.redis_timeout,
                "socket_connect_timeout": SETTINGS.redis_timeout,
            },
        },
    )
    store = CountingStore("flask_caching", redis_client(SETTINGS.redis_url, SETTINGS))

    @app.get("/data/<key>")
    def data(key: str):
        value = cache.get(key)
        if value is not None:
            return jsonify(key=key, value=value, source="cache")
        value = store.load(key)
        cache.set(key, value)
        return jsonify(key=key, value=value, source="database (slow)")

    return app


def _bare_get() -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False
    client = redis_client(SETTINGS.redis_url, SETTINGS)

    @app.get("/data/<key>")
    def data(key: str):
        value = client.get(SETTINGS.key_prefix + key)
        if value is None:
            value = key.upper()
            client.set(SETTINGS.key_prefix + key, value, ex=SETTINGS.cache_ttl)
        return jsonify(key=key, value=value, source="cache")

    return app


def _bare() -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False

    @app.get("/data/<key>")
    def data(key: str):
        return jsonify(key=key, value=key.upper(), source="bare")

    return app


FACTORIES = {
    "ours": _ours,
    "ours_no_local": _ours_no_local,
    "flask_caching": _flask_caching,
    "bare_get": _bare_get,
    "bare": _bare,
}


def app_for(name: str) -> Flask:
    return FACTORIES[name]()
