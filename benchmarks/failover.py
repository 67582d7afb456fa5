"""Benchmark: the cluster's converge times and the failover window as the app sees it.

On molecule's `cluster` scenario (3 Redis + Sentinel hosts, 1 app host, with the group_vars of
inventory/production.example, TLS on): converges fresh hosts and times it, times idempotent
re-runs, each with Ansible's own strategy and with Mitogen's (docs/speed.md), then kills the
primary's redis-server (SIGKILL) while a client asks the app for a new key every 20 ms. The window
is the time from the first answer the cache could not take (X-Cache: BYPASS, or any error) to the
first value cached again. Measured with the shipped Sentinel settings (down-after 3000 ms) and with
Sentinel's default (30000 ms), side by side.

Writes benchmarks/results/failover.md. Usage: make bench-failover (takes about 10 minutes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import redis

# How the molecule checks crash a Redis (molecule/shared/helpers.py; make bench-failover puts
# molecule/ on PYTHONPATH).
from shared.helpers import crash_server, recap, restart_crashed_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

REDIS_HOSTS = ("cluster-redis1", "cluster-redis2", "cluster-redis3")
APP = "cluster-app1"
NAME = "cache"


def server_unit(container: str) -> str:
    """The server's main unit running in the container (redis-server or valkey-server)."""
    listing = subprocess.run(
        [
            "podman",
            "exec",
            container,
            "systemctl",
            "list-units",
            "--type=service",
            "--state=running",
            "--plain",
            "--no-legend",
            "*-server.service",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return listing[0].removesuffix(".service")


def molecule(*args: str, strategy: str = "linear", unchanged: bool = False) -> float:
    """Runs a molecule command on the cluster scenario with Ansible's own strategy or Mitogen's
    (docs/speed.md); returns how long it took. With `unchanged`, stops unless its last play recap
    reports changed=0 on every host."""
    started = time.monotonic()
    env = {**os.environ, "MOLECULE_ANSIBLE_STRATEGY": strategy}
    run = subprocess.run(
        ["molecule", *args, "-s", "cluster"],
        cwd=ROOT,
        check=True,
        env=env,
        # Molecule writes Ansible's output to stderr.
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    took = time.monotonic() - started
    print(run.stdout, flush=True)
    if unchanged:
        changes = [int(n) for n in re.findall(r"changed=(\d+)", recap(run.stdout))]
        if not changes or any(changes):
            raise SystemExit(f"molecule {' '.join(args)} ({strategy}) changed something: {changes}")
    return took


STRATEGIES = {"linear": "Ansible's own (linear)", "mitogen_linear": "Mitogen's (mitogen_linear)"}


def converge_times() -> dict[str, dict[str, float]]:
    """For each strategy: converge fresh hosts (created and prepared, as `molecule create` does,
    with Ansible's own strategy), then two idempotent re-runs, each strategy's interleaved with the
    other's on the same hosts. The app's wheels are built on the first converge of a new source
    (and kept): run it twice after a change to the app for comparable numbers."""
    times: dict[str, dict[str, float]] = {strategy: {} for strategy in STRATEGIES}
    for strategy in STRATEGIES:
        molecule("destroy")
        molecule("create")
        times[strategy]["fresh"] = molecule("converge", strategy=strategy)
    for round_ in (1, 2):
        for strategy in STRATEGIES:
            times[strategy][f"rerun{round_}"] = molecule(
                "converge", strategy=strategy, unchanged=True
            )
    return times


def ip(host: str) -> str:
    out = subprocess.run(
        ["podman", "inspect", host], capture_output=True, text=True, check=True
    ).stdout
    networks = json.loads(out)[0]["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


def ephemeral(name: str) -> Path:
    """A file the scenario generated, in molecule's ephemeral directory (newest first)."""
    base = Path.home() / ".ansible" / "tmp"
    return sorted(base.glob(f"molecule.*.cluster/{name}"), key=os.path.getmtime)[-1]


def secret(name: str) -> str:
    return ephemeral(f"secrets/{name}").read_text().strip()


def client(host: str, port: int, password: str, username: str | None = None) -> redis.Redis:
    """The scenario speaks TLS only, with its own CA."""
    return redis.Redis(
        host=ip(host),
        port=port,
        username=username,
        password=password,
        socket_timeout=2,
        decode_responses=True,
        ssl=True,
        ssl_ca_certs=str(ephemeral("pki/ca.crt")),
    )


def primary(sentinels: list[redis.Redis], addresses: dict[str, str]) -> str:
    address = sentinels[0].sentinel_get_master_addr_by_name(NAME)[0]
    return next(h for h, a in addresses.items() if address in (h, a))


def window(app: str, sentinels, addresses, connect) -> dict[str, float]:
    """Kill the primary under a client loop; return the window and how long Sentinel took."""
    answers: list[tuple[float, str]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            url = f"http://{app}:5000/data/w{uuid.uuid4().hex[:12]}"
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    answers.append((time.monotonic(), response.headers["X-Cache"]))
            except (urllib.error.URLError, OSError):
                answers.append((time.monotonic(), "ERROR"))
            time.sleep(0.02)

    old = primary(sentinels, addresses)
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(2)
    killed = time.monotonic()
    # SIGKILL, with systemd's Restart=always off for the moment: a crash that stays down.
    unit = server_unit(old)
    subprocess.run(["podman", "exec", old, "sh", "-c", crash_server(unit)], check=True)
    while primary(sentinels, addresses) == old:
        time.sleep(0.05)
    promoted = time.monotonic()
    while not any(at > promoted and status == "MISS" for at, status in answers):
        time.sleep(0.05)
    time.sleep(1)
    stop.set()
    thread.join(15)
    first_bad = next(at for at, status in answers if at > killed and status != "MISS")
    first_good = next(at for at, status in answers if at > first_bad and status == "MISS")
    # Put the old primary back; Sentinel makes it a replica of the new one.
    subprocess.run(["podman", "exec", old, "sh", "-c", restart_crashed_server(unit)], check=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            info = connect(old).info("replication")
            if info["role"] == "slave" and info.get("master_link_status") == "up":
                break
        except redis.RedisError:
            pass
        time.sleep(0.5)
    return {
        "window_s": first_good - first_bad,
        "promotion_s": promoted - killed,
        "bypassed": sum(1 for at, s in answers if first_bad <= at < first_good),
        "errors": sum(1 for _, s in answers if s == "ERROR"),
    }


def main() -> None:
    converges = converge_times()
    addresses = {host: ip(host) for host in REDIS_HOSTS}
    sentinel_password, redis_password = secret("sentinel_password"), secret("redis_password")
    sentinels = [client(h, 26379, sentinel_password, "admin") for h in REDIS_HOSTS]

    def connect(host: str) -> redis.Redis:
        return client(host, 6379, redis_password, "admin")

    app = ip(APP)
    rows = []
    for down_after in (3000, 30000):
        for s in sentinels:
            s.sentinel_set(NAME, "down-after-milliseconds", down_after)
        result = window(app, sentinels, addresses, connect)
        print(down_after, result, flush=True)
        rows.append((down_after, result))
    for s in sentinels:
        s.sentinel_set(NAME, "down-after-milliseconds", 3000)

    lines = [
        (
            "| Sentinel down-after | primary killed → replica promoted (s) "
            "| app's window: first bypassed write → first cached write (s) "
            "| answers bypassed in the window | failed answers |"
        ),
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for down_after, r in rows:
        label = f"{down_after} ms" + (" (shipped)" if down_after == 3000 else " (Sentinel default)")
        lines.append(
            f"| {label} | {r['promotion_s']:.1f} | {r['window_s']:.1f} | {r['bypassed']} "
            f"| {r['errors']} |"
        )
    lines += [
        "",
        (
            "| cluster of 4 hosts (3 Redis + Sentinel, 1 app), strategy "
            "| converge from fresh hosts (s) | idempotent re-runs, 0 changed (s) |"
        ),
        "| --- | ---: | ---: |",
    ]
    for strategy, label in STRATEGIES.items():
        t = converges[strategy]
        lines.append(f"| {label} | {t['fresh']:.0f} | {t['rerun1']:.0f}, {t['rerun2']:.0f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "failover.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
