"""Run on an app host with the app's venv: the seed's part 4 as numbers, printed as JSON.

GETs /data/<key> cold, then warm five times (the median one is reported: one request on a busy
host can wait for a CPU), and reads the key's TTL in Redis with the app's own settings (its
environment file, and the password files its unit loads as credentials), so no secret passes on
a command line.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request

from cache_app import config
from cache_app.clients import RedisClients


def read_env(path: str) -> dict[str, str]:
    env = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                env[name] = value.strip('"')
    return env


def timed_get(url: str) -> dict:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.load(response)
        cache_status = response.headers.get("X-Cache")
        status = response.status
    return {
        "status": status,
        "seconds": time.perf_counter() - started,
        "body": body,
        "x_cache": cache_status,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="base URL of the app")
    parser.add_argument("--key", required=True)
    parser.add_argument("--env-file", required=True)
    parser.add_argument("--credentials", required=True, help="folder of the password files")
    args = parser.parse_args()

    env = read_env(args.env_file)
    env["CACHE_APP_REDIS_PASSWORD_FILE"] = f"{args.credentials}/redis-password"
    if env.get("CACHE_APP_SENTINELS"):
        env["CACHE_APP_SENTINEL_PASSWORD_FILE"] = f"{args.credentials}/sentinel-password"
    settings = config.from_env(env)
    cold = timed_get(f"{args.url}/data/{args.key}")
    warms = sorted(
        (timed_get(f"{args.url}/data/{args.key}") for _ in range(5)), key=lambda w: w["seconds"]
    )
    warm = warms[len(warms) // 2]
    # The primary: the one at CACHE_APP_REDIS_URL, or the one the Sentinels name.
    writer = RedisClients.for_settings(settings).writer
    ttl = writer.ttl(settings.key_prefix + args.key)
    print(
        json.dumps(
            {
                "cold": cold,
                "warm": warm,
                "warm_sources": sorted({w["body"].get("source") for w in warms}),
                "ttl": ttl,
                "configured_ttl": settings.cache_ttl,
                "slow_store_delay": settings.slow_store_delay,
            }
        )
    )


if __name__ == "__main__":
    main()
