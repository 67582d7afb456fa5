"""Cache-aside with single flight, that falls back to the slow store whenever Redis fails."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import TYPE_CHECKING, NamedTuple, Protocol

import redis
from redis.exceptions import RedisError

from . import metrics
from .flights import Flights
from .lock import Lock, Locks
from .near_cache import NearCache

if TYPE_CHECKING:
    from .clients import RedisClients
    from .config import Settings

log = logging.getLogger(__name__)

FROM_CACHE = "cache"
FROM_DATABASE = "database (slow)"


class Store(Protocol):
    def load(self, key: str) -> str: ...


class Answer(NamedTuple):
    value: str
    source: str
    # X-Cache header: HIT, MISS, BYPASS when Redis could not be used, or STALE: what the local
    # copy held, answered while Redis is unusable (see near_cache).
    status: str


class CacheAside:
    def __init__(
        self,
        writer: redis.Redis,
        reader: redis.Redis,
        store: Store,
        *,
        ttl: int,
        prefix: str = "",
        locks: Locks,
        near: NearCache | None = None,
    ) -> None:
        self.writer = writer
        self.reader = reader
        self.store = store
        self.ttl = ttl
        self.prefix = prefix
        self.locks = locks
        self.near = near
        # While Redis fails, concurrent requests for one key share one store call.
        self._store_flights: Flights[str] = Flights()

    @classmethod
    def from_settings(cls, settings: Settings, clients: RedisClients, store: Store) -> CacheAside:
        """The app's cache: writes and locks on the primary, reads where the settings send them,
        and each worker's local copy unless it is off."""
        near = None
        if settings.local_cache_size:
            near = NearCache(
                clients.listener,
                clients.source_at,
                size=settings.local_cache_size,
                max_age=settings.local_cache_ttl,
                prefix=settings.key_prefix,
                timeout=settings.redis_timeout,
                serve_stale=settings.serve_stale,
            )
        locks = Locks(
            clients.writer,
            ttl=settings.lock_ttl,
            renew_interval=settings.lock_renew_interval,
            wait=settings.lock_wait,
            wait_max=settings.lock_wait_max,
        )
        return cls(
            clients.writer,
            clients.reader,
            store,
            ttl=settings.cache_ttl,
            prefix=settings.key_prefix,
            locks=locks,
            near=near,
        )

    def get(self, key: str) -> Answer:
        name = self.prefix + key
        if self.near is not None:
            cached = self.near.get(name)
            if cached is not None:
                metrics.TALLY.hit(local=True)
                return Answer(cached, FROM_CACHE, "HIT")
            held = self.near.stale(name)
            if held is not None:
                return self._stale(held)
        try:
            cached = self._read(name)
            if cached is not None:
                metrics.TALLY.hit(local=False)
                return Answer(cached, FROM_CACHE, "HIT")
            metrics.MISSES.inc()
            # "|" is outside the keys' allowed characters: a lock never collides with a value.
            lock_name = f"{self.prefix}lock|{key}"
            lock = self.locks.acquire(lock_name)
            if lock is None:
                metrics.SINGLE_FLIGHT_WAITS.inc()
                cached, lock = self._wait_for(key, name, lock_name)
            if lock is not None:
                # The value may have landed since the (possibly replica) read: check the primary.
                cached = self.writer.get(name)
                if cached is None:
                    return self._load_and_store(key, name, lock)
                self._release(key, lock)
        except RedisError as error:
            return self._bypass(key, error)
        if cached is not None:
            metrics.TALLY.hit(local=False)
            return Answer(cached, FROM_CACHE, "HIT")
        return self._load_and_store(key, name, None)

    def _read(self, name: str) -> str | None:
        """From the local copy's server, filling the copy, while it is live; else the reader."""
        if self.near is not None:
            used, value = self.near.load(name)
            if used:
                return value
            value = self.reader.get(name)
            self.near.redis_answered()
            return value
        return self.reader.get(name)

    def _wait_for(self, key: str, name: str, lock_name: str) -> tuple[str | None, Lock | None]:
        """The value another request loaded, or the lock to load it (its holder died), or
        neither: the wait reached lock_wait_max and this request loads without the lock."""
        value, lock = self.locks.wait_for(lock_name, name)
        if value is None and lock is None:
            log.warning(
                "waited %.1f s for another request to load %r: loading it without the lock",
                self.locks.wait_max,
                key,
            )
        return value, lock

    def _load_and_store(self, key: str, name: str, lock: Lock | None) -> Answer:
        try:
            with nullcontext() if lock is None else self.locks.renewed(lock):
                value = self.store.load(key)
            try:
                self.writer.set(name, value, ex=self.ttl)
            except RedisError as error:
                log.warning("cache write failed for %r: %s", key, error)
                metrics.BYPASSED.inc()
                return Answer(value, FROM_DATABASE, "BYPASS")
            return Answer(value, FROM_DATABASE, "MISS")
        finally:
            if lock is not None:
                self._release(key, lock)

    def _release(self, key: str, lock: Lock) -> None:
        try:
            if not self.locks.release(lock):
                log.info("lock for %r had expired or been taken over before its release", key)
        except RedisError as error:
            log.info("lock for %r not released: %s", key, error)

    def _bypass(self, key: str, error: RedisError) -> Answer:
        if self.near is not None:
            held = self.near.redis_failed(self.prefix + key, error)
            if held is not None:
                return self._stale(held)

        def load() -> str:
            log.warning("redis unavailable, answering %r from the store: %s", key, error)
            return self.store.load(key)

        value = self._store_flights.run(key, load)
        metrics.BYPASSED.inc()
        return Answer(value, FROM_DATABASE, "BYPASS")

    @staticmethod
    def _stale(value: str) -> Answer:
        metrics.STALE_ANSWERS.inc()
        return Answer(value, FROM_CACHE, "STALE")
