"""Cache-aside with single flight, that falls back to the slow store whenever Redis fails."""

from __future__ import annotations

import logging
import time
from typing import NamedTuple, Protocol

import redis
from redis.exceptions import LockError, RedisError

from . import metrics
from .near_cache import NearCache

log = logging.getLogger(__name__)

FROM_CACHE = "cache"
FROM_DATABASE = "database (slow)"


class Store(Protocol):
    def load(self, key: str) -> str: ...


class Answer(NamedTuple):
    value: str
    source: str
    # X-Cache header: HIT, MISS, or BYPASS when Redis could not be used.
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
        lock_ttl: float = 10.0,
        lock_wait: float = 5.0,
        poll_interval: float = 0.01,
        near: NearCache | None = None,
    ) -> None:
        self.writer = writer
        self.reader = reader
        self.store = store
        self.ttl = ttl
        self.prefix = prefix
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.poll_interval = poll_interval
        self.near = near

    def get(self, key: str) -> Answer:
        name = self.prefix + key
        if self.near is not None:
            cached = self.near.get(name)
            if cached is not None:
                metrics.HITS.inc()
                metrics.LOCAL_HITS.inc()
                return Answer(cached, FROM_CACHE, "HIT")
        try:
            cached = self._read(name)
            if cached is not None:
                metrics.HITS.inc()
                return Answer(cached, FROM_CACHE, "HIT")
            metrics.MISSES.inc()
            # "|" is outside the keys' allowed characters: a lock never collides with a value.
            lock = self.writer.lock(f"{self.prefix}lock|{key}", timeout=self.lock_ttl)
            if lock.acquire(blocking=False):
                # The value may have landed since the (possibly replica) read: check the primary.
                cached = self.writer.get(name)
                if cached is None:
                    return self._load_and_store(key, name, lock)
                self._release(key, lock)
            else:
                metrics.SINGLE_FLIGHT_WAITS.inc()
                cached = self._wait_for(name)
        except RedisError as error:
            return self._bypass(key, error)
        if cached is not None:
            metrics.HITS.inc()
            return Answer(cached, FROM_CACHE, "HIT")
        # The loader took longer than lock_wait: answer from the store ourselves.
        return self._load_and_store(key, name, None)

    def _read(self, name: str) -> str | None:
        """From the local copy's server, filling the copy, while it is live; else the reader."""
        if self.near is not None:
            used, value = self.near.load(name)
            if used:
                return value
        return self.reader.get(name)

    def _wait_for(self, name: str) -> str | None:
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:
            value = self.writer.get(name)
            if value is not None:
                return value
            time.sleep(self.poll_interval)
        return None

    def _load_and_store(self, key: str, name: str, lock: redis.lock.Lock | None) -> Answer:
        try:
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

    @staticmethod
    def _release(key: str, lock: redis.lock.Lock) -> None:
        try:
            lock.release()
        except (LockError, RedisError) as error:
            log.info("lock for %r not released: %s", key, error)

    def _bypass(self, key: str, error: Exception) -> Answer:
        log.warning("redis unavailable, answering %r from the store: %s", key, error)
        metrics.BYPASSED.inc()
        return Answer(self.store.load(key), FROM_DATABASE, "BYPASS")
