"""Each worker's own copy of hot keys, kept coherent by Redis's invalidation messages.

This is Redis's server-assisted client-side caching (CLIENT TRACKING in broadcasting mode). One
connection per worker asks the Redis server that reads go to for a report of every change to a key
under the app's prefix: SET, DEL, expiry, eviction, FLUSHALL, and the same commands arriving from a
primary over replication. A thread reads those reports. A hit can then be answered from the
worker's memory without a round trip, until Redis reports that the key changed.

redis-py has this built in (`cache_config`) only for Redis 7.4 and later, and Debian 12 ships 7.0.
Redis 7.0's tracking works over RESP2, with the reports redirected to a subscribed connection;
here that is the tracking connection itself.

The copy is used only while the reports flow. When the link breaks, or a health PING goes
unanswered for the client timeout, the copy is emptied and hits ask Redis again until the listener
is back. An entry never outlives the key's TTL in Redis, nor `max_age` seconds. `max_age` bounds
what no report can cover, such as a listener left on a primary that a partition has cut off.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis
from cachetools import TLRUCache
from redis.exceptions import RedisError

from . import metrics

log = logging.getLogger(__name__)

CHANNEL = "__redis__:invalidate"


def _expires(_key: str, entry: tuple[str, float], _now: float) -> float:
    return entry[1]


class NearCache:
    def __init__(
        self,
        client: redis.Redis,
        *,
        size: int,
        max_age: float,
        prefix: str = "",
        timeout: float = 0.5,
        health_interval: float = 1.0,
        retry_interval: float = 1.0,
    ) -> None:
        self._client = client
        self._max_age = max_age
        self._prefix = prefix
        self._timeout = timeout
        self._health_interval = health_interval
        self._retry_interval = retry_interval
        self._entries: TLRUCache[str, tuple[str, float]] = TLRUCache(size, _expires)
        # Keys being read from Redis: name -> the reader's token, dropped by a report for the key,
        # so a value read before a change and stored after its report is not kept.
        self._pending: dict[str, object] = {}
        self._lock = threading.Lock()
        self._live = False
        self._owner_pid: int | None = None
        self._last_error = ""
        self._ensure_listening()

    @property
    def live(self) -> bool:
        """True while the invalidation reports flow (and the copy is used)."""
        self._ensure_listening()
        return self._live

    def get(self, name: str) -> str | None:
        self._ensure_listening()
        if not self._live:
            return None
        with self._lock:
            entry = self._entries.get(name)
        return None if entry is None else entry[0]

    def reading(self, name: str) -> object | None:
        """Call before reading `name` from Redis; fill() keeps the value only with this token."""
        if not self._live:
            return None
        token = object()
        with self._lock:
            self._pending[name] = token
        return token

    def fill(
        self, name: str, token: object, value: str | None, pttl_ms: int, started: float
    ) -> None:
        """Keep what reading `name` returned, unless Redis reported a change since reading().

        `pttl_ms` is the key's PTTL read with it (-1: no TTL) and `started` the monotonic time
        before the read, so the copy expires no later than the key does in Redis.
        """
        with self._lock:
            if self._pending.get(name) is not token:
                return
            del self._pending[name]
            if value is None or pttl_ms == -2 or not self._live:
                return
            age = self._max_age if pttl_ms < 0 else min(pttl_ms / 1000, self._max_age)
            self._entries[name] = (value, started + age)

    def _ensure_listening(self) -> None:
        # One listener per process. After a fork (gunicorn --preload) the copy and the thread
        # belong to the parent: the first use in the child starts its own.
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._owner_pid = os.getpid()
            self._live = False
            self._entries.clear()
            self._pending.clear()
        threading.Thread(target=self._listen_forever, name="near-cache", daemon=True).start()

    def _listen_forever(self) -> None:
        while True:
            try:
                self._listen()
            except (RedisError, OSError, ValueError) as error:
                self._went_dark(str(error))
            time.sleep(self._retry_interval)

    def _went_dark(self, reason: str) -> None:
        with self._lock:
            self._live = False
            self._entries.clear()
            self._pending.clear()
        # A refused ACL or a Redis that stays down would repeat this every retry: say it once.
        if reason != self._last_error:
            log.warning("local cache off until Redis reports changes again: %s", reason)
            self._last_error = reason

    def _listen(self) -> None:
        connection = self._client.connection_pool.get_connection()
        try:
            connection.send_command("CLIENT", "ID")
            own_id = connection.read_response()
            prefix = ("PREFIX", self._prefix) if self._prefix else ()
            connection.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", *prefix
            )
            connection.read_response()
            connection.send_command("SUBSCRIBE", CHANNEL)
            connection.read_response()
            with self._lock:
                self._entries.clear()
                self._pending.clear()
                self._live = True
            if self._last_error:
                log.warning("local cache on again")
                self._last_error = ""
            self._relay(connection)
        finally:
            connection.disconnect()
            self._client.connection_pool.release(connection)

    def _relay(self, connection: redis.connection.AbstractConnection) -> None:
        """Apply each report; PING when quiet, and give up when the PING goes unanswered."""
        pinged = False
        while True:
            if not connection.can_read(timeout=self._timeout if pinged else self._health_interval):
                if pinged:
                    raise redis.TimeoutError("Redis did not answer the local cache's health PING")
                connection.send_command("PING")
                pinged = True
                continue
            # ["message", channel, keys] or, for the PING, ["pong", ""]
            message = connection.read_response()
            pinged = False
            if message[0] == "message":
                self._invalidate(message[2])

    def _invalidate(self, keys: list[str] | None) -> None:
        with self._lock:
            if keys is None:  # FLUSHALL, FLUSHDB, a replica's full resync
                dropped = len(self._entries)
                self._entries.clear()
                self._pending.clear()
            else:
                dropped = 0
                for key in keys:
                    dropped += self._entries.pop(key, None) is not None
                    self._pending.pop(key, None)
        if dropped:
            metrics.LOCAL_INVALIDATIONS.inc(dropped)
