"""A real redis-server on a free loopback port, and an app wired to it."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cache_app import config, create_app
from cache_app.lock import LIBRARY
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


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _key_and_name(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _signed(
    subject: tuple[ec.EllipticCurvePrivateKey, x509.Name],
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Name],
    extension: x509.ExtensionType,
    critical: bool,
) -> x509.Certificate:
    """A certificate valid for a day, for `subject`'s key, signed by `issuer`'s."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject[1])
        .issuer_name(issuer[1])
        .public_key(subject[0].public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(extension, critical=critical)
        .sign(issuer[0], hashes.SHA256())
    )


def make_tls_files(workdir: Path, name: str = "tls") -> TlsFiles:
    """A CA and a certificate it signs for 127.0.0.1, as the redis role's private CA makes them."""
    authority = _key_and_name(f"{name} test CA")
    ca = _signed(authority, authority, x509.BasicConstraints(ca=True, path_length=0), True)
    server = _key_and_name("127.0.0.1")
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    cert = _signed(server, authority, x509.SubjectAlternativeName([loopback]), False)
    key = server[0]
    files = TlsFiles(workdir / f"{name}-ca.crt", workdir / f"{name}.crt", workdir / f"{name}.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


class RedisServer:
    """redis-server as a child process; its config (and password) arrive on stdin.

    With `tls`, it listens for TLS only (`port 0`, `tls-port`), as the redis role configures it.
    """

    def __init__(
        self,
        workdir: Path,
        password: str | None = None,
        extra: str = "",
        tls: TlsFiles | None = None,
    ) -> None:
        self.workdir = workdir
        self.password = password or secrets.token_urlsafe(24)
        self.port = free_port()
        self.tls = tls
        if tls:
            extra = (
                f"port 0\ntls-port {self.port}\ntls-cert-file {tls.cert}\ntls-key-file {tls.key}\n"
                f"tls-ca-cert-file {tls.ca}\ntls-auth-clients no\n{extra}"
            )
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
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not start")
        self.load_functions()

    def load_functions(self) -> None:
        """The app's function library, loaded by the admin (here the default user) as at deploy
        time; a replica gets it from its primary."""
        with contextlib.suppress(redis.ReadOnlyError):
            self.client().function_load(LIBRARY, replace=True)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca)} if self.tls else {}
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            decode_responses=True,
            socket_timeout=2,
            **tls,
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


def with_app_user(tmp_path: Path, rules: str, **env: str) -> tuple[RedisServer, config.Settings]:
    """A started redis-server with an ACL user `app` limited to `rules`, and the app's settings
    for it (`env`: more CACHE_APP_* settings, without the prefix)."""
    password = "app-user-password-0123456789"
    server = RedisServer(tmp_path, extra=f"user app on >{password} {rules}\n")
    server.start()
    (tmp_path / "app-pw").write_text(password)
    settings = config.from_env(
        {
            "CACHE_APP_REDIS_URL": f"redis://127.0.0.1:{server.port}/0",
            "CACHE_APP_REDIS_USERNAME": "app",
            "CACHE_APP_REDIS_PASSWORD_FILE": str(tmp_path / "app-pw"),
            **{f"CACHE_APP_{name}": value for name, value in env.items()},
        }
    )
    return server, settings


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
    app = create_app(settings, store=store)
    yield app
    near = app.extensions["cache_app"].near
    if near is not None:
        near.close()  # its thread would otherwise keep retrying a server that is gone


@pytest.fixture
def client(app):
    return app.test_client()
