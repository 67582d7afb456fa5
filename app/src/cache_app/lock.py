"""Single-flight locks: taken with SET NX PX; released, renewed and taken over by the Redis
functions of functions.lua (FCALL), so the app's ACL user needs no general scripting."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import NamedTuple

import redis
from redis.exceptions import RedisError, ResponseError

from . import metrics

log = logging.getLogger(__name__)

# What an admin loads into Redis (FUNCTION LOAD REPLACE); tests and deploy tooling read this copy.
LIBRARY = resources.files(__package__).joinpath("functions.lua").read_text()
LIBRARY_NAME = "cache_app"
UNLOCK = "cache_app_unlock"
EXTEND = "cache_app_extend"
TAKEOVER = "cache_app_takeover"


class LibraryNotLoaded(ResponseError):
    """Redis does not know the lock's functions: nobody loaded functions.lua on that server."""


class Lock(NamedTuple):
    name: str
    token: str  # this holder's, random: only it may renew or release the lock


class Waited(NamedTuple):
    """The end of a wait: the value another request loaded, or the lock taken over from a dead
    loader (load the value yourself), or neither: the waiter waited the most it may."""

    value: str | None
    lock: Lock | None


class Locks:
    """The single-flight locks in one Redis (the primary), and how long they live and are waited
    for (config.Settings explains the timings)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl: float,
        renew_interval: float,
        wait: float,
        wait_max: float,
        poll_interval: float = 0.01,
    ) -> None:
        self.client = client
        self.ttl_ms = int(ttl * 1000)
        self.renew_interval = renew_interval
        self.wait = wait
        self.wait_max = wait_max
        self.poll_interval = poll_interval
        self._library_missing = False
        self._library_missing_lock = threading.Lock()

    def acquire(self, name: str) -> Lock | None:
        token = secrets.token_hex(16)
        if self.client.set(name, token, nx=True, px=self.ttl_ms):
            return Lock(name, token)
        return None

    def release(self, lock: Lock) -> bool:
        """False when the lock was no longer this holder's (it expired or was taken over)."""
        return bool(self._call(UNLOCK, lock.name, lock.token))

    def extend(self, lock: Lock) -> bool:
        return bool(self._call(EXTEND, lock.name, lock.token, self.ttl_ms))

    def take_over(self, name: str, holder: str) -> Lock | None:
        """The lock, if `holder` (the token a waiter saw) still has it: one waiter wins."""
        token = secrets.token_hex(16)
        if self._call(TAKEOVER, name, holder, token, self.ttl_ms):
            return Lock(name, token)
        return None

    @contextmanager
    def renewed(self, lock: Lock) -> Iterator[None]:
        """Keeps the lock alive while the block runs, however long: waiters see its loader live."""
        stop = threading.Event()
        renewal = threading.Thread(
            target=self._renew, args=(lock, stop), name=f"renew {lock.name}", daemon=True
        )
        renewal.start()
        try:
            yield
        finally:
            stop.set()
            renewal.join()

    def _renew(self, lock: Lock, stop: threading.Event) -> None:
        while not stop.wait(self.renew_interval):
            try:
                if not self.extend(lock):
                    log.warning("lock %r lost during its load: others may load too", lock.name)
                    return
            except LibraryNotLoaded:
                return
            except RedisError as error:
                log.warning("lock %r not renewed: %s", lock.name, error)

    def wait_for(self, name: str, value_name: str) -> Waited:
        """Waits for the value at `value_name` while the lock `name`'s holder is live: it renews
        the lock, or the lock changes hands. A lock left unrenewed for `wait` seconds, or gone,
        is taken by one waiter; the others keep waiting for that one. At most `wait_max` in all.
        """
        started = time.monotonic()
        holder, holder_ttl, live_at = None, 0, started
        while (now := time.monotonic()) - started < self.wait_max:
            with self.client.pipeline(transaction=False) as pipe:
                value, token, ttl = pipe.get(value_name).get(name).pttl(name).execute()
            if value is not None:
                return Waited(value, None)
            if token is None:
                # Released without a value (its load failed) or expired: whoever sets it first.
                lock = self.acquire(name)
                if lock is not None:
                    return Waited(None, lock)
                continue
            if token != holder or ttl > holder_ttl:
                live_at = now  # a new holder, or a renewal: its loader is working
            elif now - live_at >= self.wait:
                lock = self.take_over(name, holder)
                if lock is not None:
                    metrics.SINGLE_FLIGHT_TAKEOVERS.inc()
                    log.warning("lock %r taken over: its holder stopped renewing it", name)
                    return Waited(None, lock)
            holder, holder_ttl = token, ttl
            time.sleep(self.poll_interval)
        return Waited(None, None)

    def _call(self, function: str, name: str, *args: str | int) -> int:
        try:
            result = self.client.fcall(function, 1, name, *args)
        except ResponseError as error:
            if not str(error).startswith("Function not found"):
                raise
            self._report_library_missing(function)
            raise LibraryNotLoaded(f"{function}: {error}") from error
        self._library_missing = False
        return result

    def _report_library_missing(self, function: str) -> None:
        """Once, until the library is back: every lock operation fails the same way meanwhile."""
        with self._library_missing_lock:
            if self._library_missing:
                return
            self._library_missing = True
        log.error(
            "Redis has no function %s: the function library %r is not loaded. Locks are not "
            "released, renewed or taken over (concurrent misses may each call the store) until an "
            "admin loads it: FUNCTION LOAD REPLACE with cache_app/functions.lua",
            function,
            LIBRARY_NAME,
        )
