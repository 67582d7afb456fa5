"""Benchmark: this app vs Flask-Caching vs bare Flask routes, side by side in one run.

The five apps (peers.py) run at once on this machine under the same gunicorn settings as the
cache_app role deploys (gthread, 2 workers x 16 threads), against the lab's Redis primary
(127.0.0.1:6379, published by `make lab`). wrk measures warm-hit latency and throughput at 1, 8
and 32 connections, one app at a time, in interleaved rounds (medians reported; an app's
throughput against the bare route's is the median of the rounds' ratios); then 100 concurrent cold
requests for one fresh key count slow-store calls and time the answers; then, for
this app, how soon a SET in Redis replaces the value its workers' local copies answer.

Writes benchmarks/results/results.md (table) and benchmarks/results/results.png (plot).
Usage: make bench   (or: .venv/bin/python benchmarks/compare.py --duration 4 --rounds 10)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
APPS = {
    "ours": "this app",
    "ours_no_local": "this app, local copy off",
    "flask_caching": "Flask-Caching RedisCache",
    "bare_get": "bare route + one Redis GET",
    "bare": "bare Flask route",
}
CONCURRENCY = (1, 8, 32)
# The load generator and the servers on cores of their own, when there are two or more: sharing
# every core, each round's result depended on where the scheduler put wrk's threads, and whole
# runs' medians differed by up to 0.3x. Redis (in the lab's container) is not pinned.
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = set(_CPUS[: max(1, len(_CPUS) // 2)])
LOAD_CPUS = set(_CPUS[len(SERVER_CPUS) :]) or SERVER_CPUS
COLD_CLIENTS = 100
# The settings the cache_app role deploys (its defaults and cache-app.env.j2); the config sets the
# worker class (gthread, answering its own errors in JSON).
GUNICORN = [
    "--workers=2",
    "--threads=16",
    "--config=python:cache_app.gunicorn_conf",
]


@dataclass
class Result:
    app: str
    warm: dict[int, dict[str, float]] = field(default_factory=dict)
    cold: dict[str, float] = field(default_factory=dict)
    propagation: dict[str, float] = field(default_factory=dict)


def wrk(url: str, connections: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, LOAD_CPUS),
    ).stdout
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def percentile(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * units[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def cold_burst(base: str, counter: redis.Redis, name: str) -> dict[str, float]:
    key = f"cold{uuid.uuid4().hex[:10]}"
    before = int(counter.get(f"bench:slow_store_calls:{name}") or 0)

    def one(_: int) -> float:
        started = time.perf_counter()
        get(f"{base}/data/{key}")
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=COLD_CLIENTS) as pool:
        latencies = sorted(pool.map(one, range(COLD_CLIENTS)))
    total = time.perf_counter() - started
    calls = int(counter.get(f"bench:slow_store_calls:{name}") or 0) - before
    return {
        "slow_calls": calls,
        "p50_s": latencies[len(latencies) // 2],
        "max_s": latencies[-1],
        "total_s": total,
    }


def change_propagation(base: str, counter: redis.Redis, trials: int = 20) -> dict[str, float]:
    """How long after a SET in Redis the app stops answering the old value from its copies."""
    key = f"prop{uuid.uuid4().hex[:10]}"
    url = f"{base}/data/{key}"
    get(url)  # the miss stores it
    delays, stale_after = [], 0
    for trial in range(trials):
        for _ in range(20):  # new connections, spread over the workers: each fills its copy
            get(url)
        value = f"V{trial}"
        counter.set(f"bench:{key}", value, ex=60)
        started = time.perf_counter()
        while get(url)["value"] != value:
            if time.perf_counter() - started > 10:
                raise RuntimeError("the app kept answering the old value for 10 s")
        delays.append(time.perf_counter() - started)
        # Once one answer carries the new value, does any later one still carry the old?
        stale_after += sum(get(url)["value"] != value for _ in range(20))
    return {
        "p50_ms": median(delays) * 1000,
        "max_ms": max(delays) * 1000,
        "stale_after": stale_after,
        "trials": trials,
    }


def serve(name: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    env = {**env, "PYTHONPATH": f"{ROOT / 'app' / 'src'}:{ROOT / 'benchmarks'}"}
    if name.startswith("ours"):
        # As deployed: metrics shared by the gunicorn workers through files.
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            *GUNICORN,
            f"--bind=127.0.0.1:{port}",
            f"peers:app_for('{name}')",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, SERVER_CPUS),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            # A miss takes the slow-store delay: wait for it rather than retrying into it.
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data/ready", timeout=10)
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{name} did not start on port {port}")


def table(results: list[Result]) -> str:
    lines = [
        (
            "| app | clients | warm p50 (ms) | warm p99 (ms) | requests/s | min-max "
            "| vs bare route | errors |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for clients, warm in result.warm.items():
            lines.append(
                f"| {APPS[result.app]} | {clients} | {warm['p50_ms']:.2f} | {warm['p99_ms']:.2f} "
                f"| {warm['rps']:.0f} | {warm['rps_min']:.0f}-{warm['rps_max']:.0f} "
                f"| {warm['vs_bare']:.2f} | {warm['errors']:.0f} |"
            )
    lines += [
        "",
        (
            f"| app | {COLD_CLIENTS} concurrent cold requests, one key: slow-store calls "
            "| median answer (s) | slowest answer (s) | all answered (s) |"
        ),
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        if result.cold:
            lines.append(
                f"| {APPS[result.app]} | {result.cold['slow_calls']:.0f} "
                f"| {result.cold['p50_s']:.3f} | {result.cold['max_s']:.3f} "
                f"| {result.cold['total_s']:.2f} |"
            )
    for result in results:
        if result.propagation:
            p = result.propagation
            lines += [
                "",
                (
                    "| app | a SET in Redis, then: first answer with the new value, median (ms) "
                    "| slowest (ms) | old values answered after it |"
                ),
                "| --- | ---: | ---: | ---: |",
                (
                    f"| {APPS[result.app]} | {p['p50_ms']:.1f} | {p['max_ms']:.1f} "
                    f"| {p['stale_after']:.0f} of {p['trials'] * 20:.0f} |"
                ),
            ]
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 4))
    for result in results:
        clients = list(result.warm)
        latency.plot(
            clients, [w["p50_ms"] for w in result.warm.values()], "o-", label=APPS[result.app]
        )
        throughput.plot(
            clients, [w["rps"] for w in result.warm.values()], "o-", label=APPS[result.app]
        )
    latency.set(
        xlabel="concurrent clients", ylabel="warm-hit p50 (ms)", xscale="log", xticks=CONCURRENCY
    )
    throughput.set(
        xlabel="concurrent clients", ylabel="requests/s", xscale="log", xticks=CONCURRENCY
    )
    for axis in (latency, throughput):
        axis.set_xticklabels([str(c) for c in CONCURRENCY])
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.suptitle("GET /data/<key>, warm cache, gunicorn gthread 2x16")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    # A multiple of the apps' count: each app takes each place in the rotating order equally often.
    parser.add_argument(
        "--rounds", type=int, default=2 * len(APPS), help="interleaved rounds; medians kept"
    )
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument(
        "--password-file", default=str(ROOT / ".lab" / "secrets" / "redis_password")
    )
    args = parser.parse_args()

    password = Path(args.password_file).read_text().strip()
    counter = redis.Redis(
        port=args.redis_port, username="admin", password=password, decode_responses=True
    )
    counter.ping()
    env = {
        **os.environ,
        "CACHE_APP_REDIS_URL": f"redis://127.0.0.1:{args.redis_port}/0",
        "CACHE_APP_REDIS_USERNAME": "admin",
        "CACHE_APP_REDIS_PASSWORD_FILE": args.password_file,
        "CACHE_APP_KEY_PREFIX": "bench:",
        # Warm hits are measured: with the usual 60 s the key would expire during the rounds, and
        # a run that met the expiry would time a 2 s miss and its single-flight waiters instead.
        "CACHE_APP_CACHE_TTL": "3600",
    }
    bases = {name: f"http://127.0.0.1:{port}" for port, name in enumerate(APPS, start=5901)}
    processes = [serve(name, int(base.rsplit(":", 1)[1]), env) for name, base in bases.items()]
    try:
        for base in bases.values():
            get(f"{base}/data/warm")  # make it a hit
        # Rounds interleave the apps (in a rotating order) so drift on the machine hits all alike.
        runs: dict[str, dict[int, list[dict[str, float]]]] = {
            name: {c: [] for c in CONCURRENCY} for name in APPS
        }
        names = list(APPS)
        for round_number in range(args.rounds):
            for clients in CONCURRENCY:
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    get(f"{bases[name]}/data/warm")  # a hit, or the miss happens here
                    run = wrk(f"{bases[name]}/data/warm", clients, args.duration)
                    runs[name][clients].append(run)
                    print(round_number, name, clients, run, flush=True)
        results = []
        for name in APPS:
            result = Result(name)
            for clients, samples in runs[name].items():
                result.warm[clients] = {
                    metric: median([sample[metric] for sample in samples])
                    for metric in ("p50_ms", "p99_ms", "rps")
                } | {
                    "rps_min": min(sample["rps"] for sample in samples),
                    "rps_max": max(sample["rps"] for sample in samples),
                    "errors": sum(sample["errors"] for sample in samples),
                }
                # Each round's throughput against the bare route's in the same round: drift on
                # the machine (a whole run at half speed) hits both, and cancels.
                ratios = [
                    sample["rps"] / bare["rps"]
                    for sample, bare in zip(samples, runs["bare"][clients], strict=True)
                ]
                result.warm[clients] |= {
                    "vs_bare": median(ratios),
                    # The single rounds' spread, kept in results.json (docs/benchmark.md).
                    "vs_bare_min": min(ratios),
                    "vs_bare_max": max(ratios),
                }
            if name in ("ours", "flask_caching"):
                result.cold = cold_burst(bases[name], counter, name)
                print(name, "cold", result.cold, flush=True)
            if name == "ours":
                result.propagation = change_propagation(bases[name], counter)
                print(name, "propagation", result.propagation, flush=True)
            results.append(result)
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)

    RESULTS.mkdir(parents=True, exist_ok=True)
    markdown = table(results)
    (RESULTS / "results.md").write_text(markdown)
    (RESULTS / "results.json").write_text(json.dumps([r.__dict__ for r in results], indent=2))
    plot(results, RESULTS / "results.png")
    print(markdown)


if __name__ == "__main__":
    main()
