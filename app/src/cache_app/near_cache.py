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

import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

import redis
from cachetools import TLRUCache
from redis.exceptions import RedisError

from . import metrics

log = logging.getLogger(__name__)

CHANNEL = "__redis__:invalidate"


def _expires(_key: str, entry: tuple[str, float], _now: float) -> float:
    return entry[1]


def _reset_in_child(ref: weakref.ref[NearCache]) -> None:
    near = ref()
    if near is not None:
        near._lock = threading.Lock()
        near._go_dark()
        near._owner_pid = None


class NearCache:
    """The copy, its listener thread, and the reads that fill it.

    `listener` connects to the server reads go to (through Sentinel when there is one);
    `source_at(host, port)` gives the client that reads for the copy from that same server, so a
    value and the reports about it always come from one server.
    """

    def __init__(
        self,
        listener: redis.Redis,
        source_at: Callable[[str, int], redis.Redis],
        *,
        size: int,
        max_age: float,
        prefix: str = "",
        timeout: float = 0.5,
        health_interval: float = 1.0,
        retry_interval: float = 1.0,
    ) -> None:
        self._listener = listener
        self._source_at = source_at
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
        # Set while live: the listener's server and the client that reads from it.
        self._source: redis.Redis | None = None
        self.server: tuple[str, int] | None = None
        self._owner_pid: int | None = None
        self._stop = threading.Event()
        self._last_error = ""
        # gunicorn --preload forks after the app is made: the child gets a fresh lock and copy,
        # and its first use starts its own listener (the parent's thread did not survive).
        os.register_at_fork(after_in_child=functools.partial(_reset_in_child, weakref.ref(self)))
        self._ensure_listening()

    @property
    def live(self) -> bool:
        """True while the invalidation reports flow (and the copy is used)."""
        self._ensure_listening()
        return self._source is not None

    def get(self, name: str) -> str | None:
        self._ensure_listening()
        if self._source is None:
            return None
        with self._lock:
            entry = self._entries.get(name)
        return None if entry is None else entry[0]

    def load(self, name: str) -> tuple[bool, str | None]:
        """Read `name` from the listener's server and keep it, unless Redis reports a change
        while the read is in flight. (False, None) when the copy is not live: read elsewhere.

        PTTL comes in the same round trip, so the copy expires no later than the key in Redis.
        """
        token = object()
        with self._lock:
            source = self._source
            if source is None:
                return False, None
            self._pending[name] = token
        started = time.monotonic()
        value, pttl = None, -2
        try:
            with source.pipeline(transaction=False) as pipe:
                value, pttl = pipe.get(name).pttl(name).execute(raise_on_error=False)
            if isinstance(value, Exception):
                raise value
            if isinstance(pttl, Exception):  # an app user allowed GET but not PTTL: don't keep
                pttl = -2
            return True, value
        finally:
            self._fill(name, token, value, pttl, started)

    def _fill(self, name: str, token: object, value: str | None, pttl: int, started: float) -> None:
        with self._lock:
            if self._pending.get(name) is not token:
                return  # reported changed (or the copy went dark) since the read began
            del self._pending[name]
            if value is None or pttl == -2 or self._source is None:
                return
            age = self._max_age if pttl < 0 else min(pttl / 1000, self._max_age)
            self._entries[name] = (value, started + age)

    def close(self) -> None:
        """Stop the listener (its connection closes within the health interval)."""
        self._stop.set()

    def _ensure_listening(self) -> None:
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._owner_pid = os.getpid()
        threading.Thread(target=self._listen_forever, name="near-cache", daemon=True).start()

    def _listen_forever(self) -> None:
        # The copy is dark here, whatever happened: _listen turns it off on its way out.
        while not self._stop.is_set():
            try:
                self._listen()
            except (RedisError, OSError) as error:
                self._say_once(str(error))
            except Exception as error:
                log.exception("local cache listener failed")
                self._say_once(repr(error))
            self._stop.wait(self._retry_interval)

    def _say_once(self, reason: str) -> None:
        # A refused ACL or a Redis that stays down would repeat this every retry.
        if reason != self._last_error:
            log.warning("local cache off until Redis reports changes again: %s", reason)
            self._last_error = reason

    def _listen(self) -> None:
        connection = self._listener.connection_pool.get_connection()
        try:
            connection.send_command("CLIENT", "ID")
            own_id = connection.read_response()
            prefix = ("PREFIX", self._prefix) if self._prefix else ()
            tracking = ("ON", "REDIRECT", own_id, "BCAST", *prefix)
            connection.send_command("CLIENT", "TRACKING", *tracking)
            connection.read_response()
            connection.send_command("SUBSCRIBE", CHANNEL)
            connection.read_response()
            # With Sentinel, the connection's address is the server Sentinel named.
            server = (connection.host, connection.port)
            source = self._source_at(*server)
            with self._lock:  # empty since it went dark: nothing is kept while dark
                self._source, self.server = source, server
            if self._last_error:
                log.warning("local cache on again, hearing from %s:%s", *server)
                self._last_error = ""
            self._relay(connection)
        finally:
            self._go_dark()
            connection.disconnect()
            self._listener.connection_pool.release(connection)

    def _go_dark(self) -> None:
        with self._lock:
            self._source = None
            self.server = None
            self._entries.clear()
            self._pending.clear()

    def _relay(self, connection: redis.connection.AbstractConnection) -> None:
        """Apply each report; PING when quiet, and give up when the PING goes unanswered."""
        pinged = False
        while True:
            if self._stop.is_set():
                return
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
