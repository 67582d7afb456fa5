"""A real redis-server on a free loopback port, and an app wired to it."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cache_app import config, create_app
from cache_app.slow_store import SlowStore


def wait_for(predicate, timeout: float, step: float = 0.05):
    """Poll until the predicate is truthy or the timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """redis-server as a child process; its config (and password) arrive on stdin."""

    def __init__(self, workdir: Path, password: str | None = None, extra: str = "") -> None:
        self.workdir = workdir
        self.password = password or secrets.token_urlsafe(24)
        self.port = free_port()
        self.extra = extra
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(
            f'port {self.port}\nbind 127.0.0.1\nsave ""\nappendonly no\n'
            f"dir {self.workdir}\nrequirepass {self.password}\nmasterauth {self.password}\n"
            f"{self.extra}"
        )
        self.process.stdin.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, password=self.password, decode_responses=True, socket_timeout=2
        )


class SentinelServer:
    """redis-server --sentinel watching one primary; Sentinel needs a config file it can rewrite."""

    def __init__(self, workdir: Path, primary: RedisServer, name: str = "cache") -> None:
        self.password = secrets.token_urlsafe(24)
        self.port = free_port()
        self.name = name
        self.conf = workdir / f"sentinel-{self.port}.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\nrequirepass {self.password}\n"
            f"sentinel monitor {name} 127.0.0.1 {primary.port} 1\n"
            f"sentinel auth-pass {name} {primary.password}\n"
            f"sentinel down-after-milliseconds {name} 1000\n"
            f"sentinel failover-timeout {name} 5000\n"
        )
        self.conf.chmod(0o600)
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", str(self.conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
        )

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, password=self.password, decode_responses=True, socket_timeout=2
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class CountingStore(SlowStore):
    """The app's slow store, counting calls; a short delay keeps the suite fast."""

    def __init__(self, delay: float = 0.3) -> None:
        super().__init__(delay)
        self.calls = 0

    def load(self, key: str) -> str:
        self.calls += 1
        return super().load(key)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (make bootstrap installs it)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def password_file(tmp_path: Path, redis_server: RedisServer) -> Path:
    path = tmp_path / "redis-password"
    path.write_text(redis_server.password + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def settings(redis_server: RedisServer, password_file: Path) -> config.Settings:
    return config.from_env(
        {
            "CACHE_APP_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
            "CACHE_APP_REDIS_PASSWORD_FILE": str(password_file),
        }
    )


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def app(settings, store):
    return create_app(settings, store=store)


@pytest.fixture
def client(app):
    return app.test_client()
