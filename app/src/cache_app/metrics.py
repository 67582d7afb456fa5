"""Prometheus metrics; PROMETHEUS_MULTIPROC_DIR makes them correct across gunicorn workers."""

from __future__ import annotations

import atexit
import bisect
import math
import os
import threading
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HITS = Counter("cache_app_cache_hits", "Answers served from the cache (Redis or a local copy)")
LOCAL_HITS = Counter(
    "cache_app_local_cache_hits", "Hits answered from the worker's own copy, without asking Redis"
)
LOCAL_INVALIDATIONS = Counter(
    "cache_app_local_cache_invalidations", "Local copies dropped because Redis reported a change"
)
MISSES = Counter("cache_app_cache_misses", "Lookups that found nothing in Redis")
SLOW_STORE_CALLS = Counter("cache_app_slow_store_calls", "Calls to the slow database")
SINGLE_FLIGHT_WAITS = Counter(
    "cache_app_single_flight_waits", "Misses that waited for another request's load"
)
SINGLE_FLIGHT_TAKEOVERS = Counter(
    "cache_app_single_flight_takeovers", "Locks a waiter took from a loader that stopped renewing"
)
BYPASSED = Counter("cache_app_cache_bypassed", "Answers given without Redis (down or refusing)")
STALE_ANSWERS = Counter(
    "cache_app_stale_answers",
    "Answers from what a worker's local copy held, while Redis could not be used",
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10)
LATENCY = Histogram(
    "cache_app_request_seconds", "Request latency", ["endpoint"], buckets=LATENCY_BUCKETS
)


# The histogram's endpoint label, by the path's first segment (bounded: unknown paths share one).
ENDPOINTS = {"data": "/data/<path:key>", "healthz": "/healthz", "metrics": "/metrics"}
UNMATCHED = "unmatched"


class _Tally:
    """What every request records (a hit, its latency), counted in this worker's memory and
    added to the metrics above in one write per value every FLUSH_INTERVAL seconds, before each
    scrape this worker answers, and when the worker exits.

    With PROMETHEUS_MULTIPROC_DIR each metric write takes a process-wide lock and writes a
    memory-mapped file: a hit made four of them, more CPU than the rest of the hit's own work.
    Here a hit adds to numbers its thread alone writes. The counts each Prometheus scrape sees
    are at most FLUSH_INTERVAL old for the other workers.
    """

    FLUSH_INTERVAL = 0.5

    def __init__(self) -> None:
        self._bounds = (*LATENCY_BUCKETS, math.inf)  # the histogram's buckets, +Inf last
        width = 1 + len(self._bounds)  # each endpoint: its sum, then its buckets
        self._latency_at = {
            endpoint: 2 + i * width for i, endpoint in enumerate([*ENDPOINTS.values(), UNMATCHED])
        }
        self._size = 2 + width * len(self._latency_at)  # hits and local hits first
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush)

    def _reset(self) -> None:
        # One list per live thread, written by it alone; a thread's counts move into _retired at
        # the first flush after it ends, so a server that starts a thread per request does not
        # keep a list for each.
        self._counts: list[tuple[threading.Thread, list[float]]] = []
        self._retired = [0.0] * self._size
        self._flushed = [0.0] * self._size
        self._flusher: threading.Thread | None = None
        self._local = threading.local()
        self._lock = threading.Lock()  # flushes, and the list of threads' counts

    def _mine(self) -> list[float]:
        try:
            return self._local.counts
        except AttributeError:
            counts = self._local.counts = [0.0] * self._size
            with self._lock:
                self._counts.append((threading.current_thread(), counts))
                if self._flusher is None:
                    self._flusher = threading.Thread(
                        target=self._flush_forever, name="metrics-flush", daemon=True
                    )
                    self._flusher.start()
            return counts

    def hit(self, *, local: bool) -> None:
        counts = self._mine()
        counts[0] += 1
        if local:
            counts[1] += 1

    def latency(self, endpoint: str, seconds: float) -> None:
        counts = self._mine()
        at = self._latency_at[endpoint]
        counts[at] += seconds
        counts[at + 1 + bisect.bisect_left(self._bounds, seconds)] += 1

    def flush(self) -> None:
        with self._lock:
            live = []
            for thread, counts in self._counts:
                if thread.is_alive():
                    live.append((thread, counts))
                else:  # ended: its counts no longer change
                    self._retired = [a + b for a, b in zip(self._retired, counts, strict=True)]
            self._counts = live
            totals = [
                math.fsum(column)
                for column in zip(self._retired, *(counts for _, counts in live), strict=True)
            ]
            new = [total - flushed for total, flushed in zip(totals, self._flushed, strict=True)]
            self._flushed = totals
        if new[0]:
            HITS.inc(new[0])
        if new[1]:
            LOCAL_HITS.inc(new[1])
        for endpoint, at in self._latency_at.items():
            buckets = new[at + 1 : at + 1 + len(self._bounds)]
            if any(buckets):
                # The histogram's own values: Histogram.observe adds one observation at a time.
                child = LATENCY.labels(endpoint=endpoint)
                child._sum.inc(new[at])
                for bucket, count in zip(child._buckets, buckets, strict=True):
                    if count:
                        bucket.inc(count)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_INTERVAL)
            self.flush()


TALLY = _Tally()


def render() -> tuple[bytes, str]:
    TALLY.flush()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
