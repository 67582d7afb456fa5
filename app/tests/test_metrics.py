"""The hot path's metrics: hits and request latency are counted in each worker's memory and
added to the Prometheus metrics in one write per value, at every scrape and twice a second."""

from __future__ import annotations

import math
import os
import threading

from prometheus_client import REGISTRY

from cache_app import metrics
from conftest import wait_for


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_hits_from_many_threads_are_all_counted_once():
    before = sample("cache_app_cache_hits_total"), sample("cache_app_local_cache_hits_total")

    def hits() -> None:
        for n in range(1000):
            metrics.TALLY.hit(local=n % 4 == 0)

    threads = [threading.Thread(target=hits) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics.TALLY.flush()
    metrics.TALLY.flush()  # nothing new: adds nothing
    assert sample("cache_app_cache_hits_total") == before[0] + 8000
    assert sample("cache_app_local_cache_hits_total") == before[1] + 2000


def test_a_thread_per_request_server_leaves_no_list_per_thread():
    """Threads that ended have their counts kept in one total, and their own lists dropped."""
    metrics.TALLY.flush()
    before = sample("cache_app_cache_hits_total")
    for _ in range(50):
        thread = threading.Thread(target=metrics.TALLY.hit, kwargs={"local": False})
        thread.start()
        thread.join()
    metrics.TALLY.flush()
    assert sample("cache_app_cache_hits_total") == before + 50
    # Only live threads keep a list: here the main thread and the flusher, at most.
    assert all(thread.is_alive() for thread, _ in metrics.TALLY._counts)
    assert len(metrics.TALLY._counts) <= threading.active_count()


def test_latencies_land_in_the_histograms_buckets_and_sum():
    endpoint = metrics.ENDPOINTS["healthz"]

    def bucket(bound: str) -> float:
        return sample("cache_app_request_seconds_bucket", endpoint=endpoint, le=bound)

    before = {le: bucket(le) for le in ("0.001", "0.005", "10.0", "+Inf")}
    before_sum = sample("cache_app_request_seconds_sum", endpoint=endpoint)
    for seconds in (0.0004, 0.001, 0.003, 11.0):
        metrics.TALLY.latency(endpoint, seconds)
    metrics.TALLY.flush()
    # Cumulative buckets: 0.001 holds 0.0004 and 0.001 (le: less or equal).
    assert bucket("0.001") == before["0.001"] + 2
    assert bucket("0.005") == before["0.005"] + 3
    assert bucket("10.0") == before["10.0"] + 3
    assert bucket("+Inf") == before["+Inf"] + 4
    total = sample("cache_app_request_seconds_sum", endpoint=endpoint)
    assert math.isclose(total - before_sum, 11.0044)


def test_counts_reach_the_metrics_without_a_scrape():
    """Another worker answers the scrape: this one's counts arrive within the flush interval."""
    before = sample("cache_app_cache_hits_total")
    metrics.TALLY.hit(local=False)
    assert wait_for(
        lambda: sample("cache_app_cache_hits_total") == before + 1,
        timeout=metrics.TALLY.FLUSH_INTERVAL * 4,
    )


def test_a_forked_worker_counts_only_its_own_hits():
    """gunicorn forks its workers: what the parent had not yet flushed is not the child's."""
    metrics.TALLY.flush()
    before = sample("cache_app_cache_hits_total")
    for _ in range(5):
        metrics.TALLY.hit(local=False)  # not flushed before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one hit of its own
        try:
            metrics.TALLY.hit(local=False)
            metrics.TALLY.flush()
            os.write(write, repr(sample("cache_app_cache_hits_total")).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = float(pipe.read())
    os.waitpid(pid, 0)
    assert child == before + 1
    metrics.TALLY.flush()
    assert sample("cache_app_cache_hits_total") == before + 5
