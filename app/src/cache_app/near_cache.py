"""Each worker's own copy of hot keys, kept coherent by Redis's invalidation messages.

This is Redis's server-assisted client-side caching (CLIENT TRACKING in broadcasting mode). One
connection per worker asks the Redis server that reads go to for a report of every change to a key
under the app's prefix: SET, DEL, expiry, eviction, FLUSHALL, and the same commands arriving from a
primary over replication. A thread reads those reports. A hit can then be answered from the
worker's memory without a round trip, until Redis reports that the key changed.

redis-py has this built in (`cache_config`) only for Redis 7.4 and later, and Debian 12 ships 7.0.
Redis 7.0's tracking works over RESP2, with the reports redirected to a subscribed connection;
here that is the tracking connection itself.

The copy answers hits only while the reports flow. A fresh hit never outlives the key's TTL in
Redis, nor `max_age` seconds. `max_age` bounds what no report can cover, such as a listener left on
a primary that a partition has cut off.

When the listener loses Redis (the link breaks, or a health PING goes unanswered for the client
timeout), hits ask Redis again until the listener is back. With `serve_stale`, the copy keeps what
it held, each entry until the key's expiry in Redis, and while Redis cannot be used (see
`redis_unusable`) the worker answers those keys as stale instead of waiting for Redis each time:
nobody can change a key in a Redis that cannot be reached. The held entries are dropped as soon as
Redis answers again (a key may have changed there meanwhile) and when the listener is back.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple

import redis
from cachetools import LRUCache
from redis.exceptions import AuthenticationError, InvalidResponse, RedisError

from . import metrics

log = logging.getLogger(__name__)

CHANNEL = "__redis__:invalidate"


class _Held(NamedTuple):
    value: str
    # A fresh hit until then (monotonic): the key's expiry in Redis, or max_age, whichever is first.
    fresh_until: float
    # The key's expiry in Redis (monotonic; inf without a TTL): a stale answer until then at most.
    expires_at: float


def _unexpired(held: _Held | None) -> str | None:
    """A held value, if its key has not yet expired in Redis (a stale answer is bounded by it)."""
    return None if held is None or held.expires_at <= time.monotonic() else held.value


def _redis_expiry(pttl: object, started: float) -> float | None:
    """When the key expires in Redis, from PTTL's answer; None when the answer is not a TTL
    (an error, a missing key, anything but an integer)."""
    if type(pttl) is not int:
        return None
    if pttl == -1:
        return math.inf
    return started + pttl / 1000 if pttl > 0 else None


def redis_unusable(error: BaseException) -> bool:
    """Whether `error` says this worker cannot use Redis at all, for any key: Redis unreachable,
    silent past the timeout, or still loading its data (LOADING refuses writes too). Nobody can
    change a key in such a Redis, so held values may be answered. A refusal is not one: NOPERM or
    WRONGTYPE are about one key or command, and with a wrong password Redis is up for the others,
    who may be changing keys."""
    return isinstance(error, (redis.ConnectionError, redis.TimeoutError)) and not isinstance(
        error, AuthenticationError
    )


def _reset_in_child(ref: weakref.ref[NearCache]) -> None:
    near = ref()
    if near is not None:
        near._lock = threading.Lock()
        near._go_dark(redis_lost=False)
        near._unusable_until = 0.0
        near._owner_pid = None


class NearCache:
    """The copy, its listener thread, and the reads that fill it.

    `listener` connects to the server reads go to (through Sentinel when there is one);
    `source_at(host, port)` gives the client that reads for the copy from that same server, so a
    value and the reports about it always come from one server. `serve_stale`: keep what the copy
    held when Redis became unusable, for `stale()`; `backoff`: how long, after a sign that Redis
    is unusable, held keys are answered without asking Redis.
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
        serve_stale: bool = True,
        backoff: float = 1.0,
    ) -> None:
        self._listener = listener
        self._source_at = source_at
        self._max_age = max_age
        self._prefix = prefix
        self._timeout = timeout
        self._health_interval = health_interval
        self._retry_interval = retry_interval
        self._serve_stale = serve_stale
        self._backoff = backoff
        # Least recently used out first. Each entry's times are checked where it is read: a hit
        # only while fresh, a stale answer only until the key's expiry in Redis. (cachetools'
        # TLRUCache would drop expired entries itself, at several times the cost of a hit.)
        self._entries: LRUCache[str, _Held] = LRUCache(size)
        # Keys being read from Redis: name -> the reader's token, dropped by a report for the key,
        # so a value read before a change and stored after its report is not kept.
        self._pending: dict[str, object] = {}
        self._lock = threading.Lock()
        # Set while live: the listener's server and the client that reads from it.
        self._source: redis.Redis | None = None
        self.server: tuple[str, int] | None = None
        self._owner_pid: int | None = None
        # Until then (monotonic), Redis is taken as unusable and held keys are answered stale;
        # 0: no failure since Redis last answered.
        self._unusable_until = 0.0
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
        """A fresh hit: only while live."""
        self._ensure_listening()
        with self._lock:
            if self._source is None:
                return None
            held = self._entries.get(name)
        if held is None or held.fresh_until <= time.monotonic():
            return None
        return held.value

    def stale(self, name: str) -> str | None:
        """While Redis is unusable (within the back-off after a sign of it), what the copy held
        for `name`: answered without asking Redis. Once the back-off has run out, one caller gets
        None and asks Redis (a probe); the others keep answering held values until it reports."""
        if not self._serve_stale or not self._unusable_until:
            return None
        with self._lock:
            if self._source is not None or not self._unusable_until:
                return None
            now = time.monotonic()
            if now >= self._unusable_until:
                self._unusable_until = now + self._backoff
                return None
            held = self._entries.get(name)
        return _unexpired(held)

    def redis_failed(self, name: str, error: RedisError) -> str | None:
        """A request's Redis call failed. If that makes Redis unusable, start the back-off and
        return what the copy held for `name` (None when nothing, or when the listener is live:
        then the failing server may not be the one reads go to). A refusal is an answer."""
        if not redis_unusable(error):
            self.redis_answered()
            return None
        with self._lock:
            self._unusable_until = time.monotonic() + self._backoff
            if self._source is not None or not self._serve_stale:
                return None
            held = self._entries.get(name)
        return _unexpired(held)

    def redis_answered(self) -> None:
        """Redis answered a request: it can be reached, so keys may change there unreported until
        the listener is back. The back-off ends, and what the copy held while dark is dropped."""
        if self._source is not None and not self._unusable_until:
            return
        with self._lock:
            self._unusable_until = 0.0
            if self._source is None:
                self._entries.clear()

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
        value: object = None
        pttl: object = None
        try:
            with source.pipeline(transaction=False) as pipe:
                value, pttl = pipe.get(name).pttl(name).execute(raise_on_error=False)
        finally:
            self._fill(name, token, value, pttl, started)
        if isinstance(value, Exception):
            raise value
        if value is not None and not isinstance(value, str):
            raise InvalidResponse(f"GET answered a {type(value).__name__}, not a string")
        # PTTL refused (an app user allowed GET but not PTTL): answered, just not kept.
        return True, value

    def _fill(self, name: str, token: object, value: object, pttl: object, started: float) -> None:
        """Keep what GET answered, if it is a string and PTTL gave its TTL: an error (WRONGTYPE,
        NOPERM), a missing key, bytes or a PTTL that is not a number are never kept."""
        with self._lock:
            if self._pending.get(name) is not token:
                return  # reported changed (or the copy went dark) since the read began
            del self._pending[name]
            expires_at = _redis_expiry(pttl, started)
            if not isinstance(value, str) or expires_at is None or self._source is None:
                return
            fresh_until = min(expires_at, started + self._max_age)
            self._entries[name] = _Held(value, fresh_until, expires_at)

    def close(self) -> None:
        """Stop the listener (its connection closes within the health interval)."""
        self._stop.set()

    def _ensure_listening(self) -> None:
        # One listener per process: a fork resets _owner_pid in the child (_reset_in_child), which
        # starts its own on first use. No getpid() here: this runs on every hit.
        if self._owner_pid is not None:
            return
        with self._lock:
            if self._owner_pid is not None:
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
        redis_lost = False
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
            with self._lock:
                # What was held while dark may have changed unreported: never fresh again.
                self._entries.clear()
                self._unusable_until = 0.0
                self._source, self.server = source, server
            if self._last_error:
                log.warning("local cache on again, hearing from %s:%s", *server)
                self._last_error = ""
            self._relay(connection)
        except RedisError as error:
            redis_lost = redis_unusable(error)
            raise
        finally:
            self._go_dark(redis_lost=redis_lost)
            connection.disconnect()
            self._listener.connection_pool.release(connection)

    def _go_dark(self, *, redis_lost: bool) -> None:
        """Stop answering hits. When Redis became unusable, keep what was held for stale answers
        (see `stale`) and start the back-off; otherwise drop it."""
        with self._lock:
            self._source = None
            self.server = None
            self._pending.clear()
            if redis_lost:
                self._unusable_until = time.monotonic() + self._backoff
            if not (redis_lost and self._serve_stale):
                self._entries.clear()

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
