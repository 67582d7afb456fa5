"""The app's Redis clients, made once per app from its settings (a Flask extension).

`RedisClients(app)` or `RedisClients().init_app(app)` reads the settings from
`app.config["SETTINGS"]` and keeps the clients in `app.extensions["redis_clients"]`
(`RedisClients.for_settings(settings)`: the same, without an app):

- `writer`: always the primary;
- `reader`: a replica (with Sentinel and read_from=replica, or CACHE_APP_REDIS_READ_URL), else
  the writer itself;
- `listener`: for the local copy's invalidation reports, from the server reads go to. RESP2:
  Redis 7.0 sends the reports to a subscribed connection there;
- `source_at(host, port)`: the client that reads for the local copy from the server the
  listener found, so a value and the reports about it come from one server.

Every client has short timeouts and no retries: a dead Redis costs at most one timeout per request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from .config import Settings

EXTENSION = "redis_clients"


def _tls_options(settings: Settings) -> dict:
    """TLS with the deployment's CA: the server's certificate and its name are both checked."""
    if not settings.redis_tls_ca_file:
        return {}
    return {
        "ssl_ca_certs": settings.redis_tls_ca_file,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }


def _client_options(settings: Settings) -> dict:
    return {
        "username": settings.redis_username,
        "password": settings.redis_password,
        "socket_connect_timeout": settings.redis_timeout,
        "socket_timeout": settings.redis_timeout,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": True,
        **_tls_options(settings),
    }


def redis_client(url: str, settings: Settings, **extra: object) -> redis.Redis:
    """One client for `url` with the app's credentials, TLS and timeouts."""
    return redis.Redis.from_url(url, **_client_options(settings), **extra)


class RedisClients:
    writer: redis.Redis
    reader: redis.Redis
    listener: redis.Redis
    source_at: Callable[[str, int], redis.Redis]

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        self._connect(app.config["SETTINGS"])
        app.extensions[EXTENSION] = self

    @classmethod
    def for_settings(cls, settings: Settings) -> RedisClients:
        """The same clients without an app (a script with the app's settings)."""
        clients = cls()
        clients._connect(settings)
        return clients

    def _connect(self, settings: Settings) -> None:
        if settings.sentinels:
            self._through_sentinel(settings)
        else:
            self._at_urls(settings)

    @property
    def distinct(self) -> list[redis.Redis]:
        """Writer and reader, once each (one client when reads are not sent to a replica)."""
        return list({id(client): client for client in (self.writer, self.reader)}.values())

    def _through_sentinel(self, settings: Settings) -> None:
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
        name = settings.sentinel_master
        self.writer = sentinel.master_for(name, **options)
        replica = settings.read_from == "replica"
        lookup = sentinel.slave_for if replica else sentinel.master_for
        self.reader = lookup(name, **options) if replica else self.writer
        # Sentinel may name a different server to each pool: the copy reads from the one its
        # listener was given.
        self.listener = lookup(name, **options, protocol=2)
        self.source_at = functools.cache(
            lambda host, port: redis.Redis(host=host, port=port, **options)
        )

    def _at_urls(self, settings: Settings) -> None:
        self.writer = redis_client(settings.redis_url, settings)
        read_url = settings.redis_read_url
        self.reader = redis_client(read_url, settings) if read_url else self.writer
        # One server for reads: the listener hears from it and the reader fills the copy from it.
        self.listener = redis_client(read_url or settings.redis_url, settings, protocol=2)
        reader = self.reader
        self.source_at = lambda *_: reader
