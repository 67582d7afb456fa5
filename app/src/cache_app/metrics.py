"""Prometheus metrics; PROMETHEUS_MULTIPROC_DIR makes them correct across gunicorn workers."""

from __future__ import annotations

import os

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
LATENCY = Histogram(
    "cache_app_request_seconds",
    "Request latency",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10),
)


_latency_children: dict[str, Histogram] = {}


def latency(endpoint: str) -> Histogram:
    """The histogram child for one route, looked up once: labels() is costly on every request."""
    child = _latency_children.get(endpoint)
    if child is None:
        child = _latency_children.setdefault(endpoint, LATENCY.labels(endpoint=endpoint))
    return child


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
