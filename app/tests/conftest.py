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


class RedisServer:
    """redis-server as a child process; its config (and password) arrive on stdin."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.password = secrets.token_urlsafe(24)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
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
            f"dir {self.workdir}\nrequirepass {self.password}\n"
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
