"""The edges of the app's port: what /healthz tells anyone, who may read /metrics, and that every
answer, gunicorn's own included, is JSON and never a 5xx for what a client sent."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
import yaml
from gunicorn.config import Config
from gunicorn.glogging import Logger

from cache_app import config, create_app
from cache_app.config import KEY_MAX_LENGTH_LIMIT, ConfigError
from cache_app.gunicorn_worker import JsonErrorThreadWorker
from conftest import RedisServer, free_port, with_app_user

ROLE = Path(__file__).resolve().parents[2] / "roles" / "cache_app"
GUNICORN = Path(sys.executable).with_name("gunicorn")


def quiet(settings: config.Settings, **changes: object) -> config.Settings:
    """Settings without the local copy, whose listener would keep retrying in the background."""
    return dataclasses.replace(settings, local_cache_size=0, **changes)


# --- /healthz: a short reason, the detail in the log ----------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the backlog does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("wrong password", "redis refused the credentials"),
        ("nothing listens", "redis unreachable"),
        ("never answers", "redis timeout"),
    ],
)
def test_healthz_names_the_failure_without_its_detail(
    request, settings, redis_server, store, failure, reason, caplog
):
    if failure == "wrong password":
        port = redis_server.port
        broken = quiet(settings, redis_password="wrong-password-0123456789")
    else:
        port = (
            free_port() if failure == "nothing listens" else request.getfixturevalue("silent_port")
        )
        broken = quiet(settings, redis_url=f"redis://127.0.0.1:{port}/0")
    client = create_app(broken, store=store).test_client()

    for answer in [client.get("/healthz"), client.get("/healthz")]:
        assert answer.status_code == 503
        assert answer.is_json
        assert answer.get_json() == {"status": "unavailable", "reason": reason}
        body = answer.get_data(as_text=True)
        for leak in ("127.0.0.1", str(port), "Error", "WRONGPASS", "invalid", "Connection"):
            assert leak not in body
    # The detail is for the operator: logged, once while it lasts.
    logged = [r.getMessage() for r in caplog.records if r.name == "cache_app.health"]
    assert len(logged) == 1, logged
    assert "redis unavailable" in logged[0]
    assert "Error: " in logged[0]  # the exception and its text


def test_healthz_names_a_user_refused_the_command(tmp_path, store):
    server, settings = with_app_user(tmp_path, "~* +get", LOCAL_CACHE_SIZE="0")
    try:
        answer = create_app(settings, store=store).test_client().get("/healthz")
        assert answer.status_code == 503
        assert answer.get_json() == {
            "status": "unavailable",
            "reason": "redis refused the command to the app's user",
        }
    finally:
        server.stop()


def test_healthz_logs_the_recovery_and_the_next_failure(settings, store, redis_server, caplog):
    client = create_app(quiet(settings), store=store).test_client()
    redis_server.stop()
    assert client.get("/healthz").status_code == 503
    redis_server.start()
    assert client.get("/healthz").status_code == 200
    redis_server.stop()
    assert client.get("/healthz").status_code == 503
    logged = [r.getMessage() for r in caplog.records if r.name == "cache_app.health"]
    assert [m.split(":")[1].strip() for m in logged] == [
        "redis unavailable",
        "redis answers again",
        "redis unavailable",
    ]


# --- /metrics: only to allowed networks -----------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_metrics_by_default_to_loopback(client, address):
    answer = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 200
    assert "cache_app_cache_hits_total" in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    "address", ["10.0.0.5", "192.0.2.1", "2001:db8::1", "::ffff:10.0.0.5", "", "localhost", "x"]
)
def test_metrics_refused_to_other_clients_in_json(client, address):
    answer = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 403
    assert answer.get_json()["error"] == "Forbidden"
    assert "cache_app" not in answer.get_data(as_text=True)


def test_metrics_to_the_configured_networks_only(settings, store):
    env = {"CACHE_APP_METRICS_ALLOWED_NETWORKS": " 10.0.20.0/24, 2001:db8::/32 "}
    networks = config.from_env(env).metrics_allowed_networks
    client = create_app(quiet(settings, metrics_allowed_networks=networks), store=store)
    client = client.test_client()
    for address, status in [
        ("10.0.20.7", 200),
        ("2001:db8:1::9", 200),
        ("10.0.21.7", 403),
        ("127.0.0.1", 403),
    ]:
        assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == status


def test_an_empty_allow_list_refuses_everyone(settings, store):
    networks = config.from_env({"CACHE_APP_METRICS_ALLOWED_NETWORKS": ""}).metrics_allowed_networks
    assert networks == ()
    client = create_app(quiet(settings, metrics_allowed_networks=networks), store=store)
    answer = client.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "value", ["10.0.0.1/8", "10.0.0.0/33", "::1/129", "app.example.com", "10.0.0.0/8;", "*"]
)
def test_bad_metrics_networks_stop_start_up(value):
    with pytest.raises(
        ConfigError, match=f"CACHE_APP_METRICS_ALLOWED_NETWORKS: '{re.escape(value)}'"
    ):
        config.from_env({"CACHE_APP_METRICS_ALLOWED_NETWORKS": f"127.0.0.0/8,{value}"})


# --- Requests whose target is not a path ----------------------------------------------------------


@pytest.mark.parametrize(
    "path_info",
    ["", "*", "data/x", "http://x/data/a", "/%ff", "/\xe9t\xe9", "//", "/\x00", "\x7f"],
)
def test_any_path_info_gets_json_and_no_5xx(client, path_info):
    """Werkzeug reads a path without its leading slash as if it had one ("data/x"); the rest
    matches no route."""
    answer = client.get("/", environ_overrides={"PATH_INFO": path_info})
    assert answer.status_code < 500
    assert answer.is_json
    assert answer.status_code == 200 or answer.get_json()["status"] == answer.status_code


# --- gunicorn as deployed: its own answers are JSON too -------------------------------------------


def _role_gunicorn_args() -> str:
    """GUNICORN_CMD_ARGS as the role writes it, with the role's defaults."""
    template = (ROLE / "templates" / "etc" / "cache-app" / "cache-app.env.j2").read_text()
    line = next(x for x in template.splitlines() if x.startswith("GUNICORN_CMD_ARGS="))
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    rendered = jinja2.Template(line, undefined=jinja2.StrictUndefined).render(defaults)
    return rendered.split("=", 1)[1].strip('"')


def _answers(raw: bytes, port: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw bytes, close our side, and parse every answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    answers = []
    while data:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, head
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        length = 0 if raw.startswith(b"HEAD ") else int(headers.get("content-length", 0))
        body, data = data[:length], data[length:]
        answers.append((int(status_line.split(" ")[1]), headers, body))
    return answers


@pytest.fixture(scope="module")
def gunicorn_port(tmp_path_factory) -> Iterator[int]:
    workdir = tmp_path_factory.mktemp("gunicorn")
    redis_server = RedisServer(workdir)
    redis_server.start()
    (workdir / "redis-password").write_text(redis_server.password)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
        "GUNICORN_CMD_ARGS": _role_gunicorn_args(),
        "CACHE_APP_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/0",
        "CACHE_APP_REDIS_PASSWORD_FILE": str(workdir / "redis-password"),
        "CACHE_APP_SLOW_STORE_DELAY": "0.01",
        # The longest key the settings allow, to show gunicorn lets every accepted key through.
        "CACHE_APP_KEY_MAX_LENGTH": str(KEY_MAX_LENGTH_LIMIT),
    }
    log = workdir / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(GUNICORN), f"--bind=127.0.0.1:{port}", "cache_app.wsgi:app"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if _answers(http_request("GET /healthz HTTP/1.1"), port)[0][0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        redis_server.stop()
    assert "Traceback" not in log.read_text(), log.read_text()


def http_request(line: str | bytes, *headers: str, body: bytes = b"") -> bytes:
    """A request with a Host header, `headers` after it, and `body`."""
    head = line.encode() if isinstance(line, str) else line
    return b"\r\n".join([head, b"Host: t", *(h.encode() for h in headers), b"", body])


RAW_REQUESTS = {
    "OPTIONS *": http_request("OPTIONS * HTTP/1.1"),
    "absolute-form without a path": http_request("GET http://x HTTP/1.1"),
    "absolute-form": http_request("GET http://x/data/a HTTP/1.1"),
    "request line over the limit": http_request(f"GET /{'a' * 10_000} HTTP/1.1"),
    "header over the limit": http_request("GET / HTTP/1.1", f"X-Big: {'a' * 9000}"),
    "200 headers": http_request("GET / HTTP/1.1", *(f"X-H{i}: v" for i in range(200))),
    "garbage request line": b"garbage\r\n\r\n",
    "HTTP/9.9": http_request("GET / HTTP/9.9"),
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "bad method": http_request("G@T / HTTP/1.1"),
    "bare LF": b"GET / HTTP/1.1\nHost: t\n\n",
    "bad chunked body": http_request(
        "GET /data/x HTTP/1.1", "Transfer-Encoding: chunked", body=b"zz\r\n\r\n"
    ),
    "unknown transfer coding": http_request("POST /data/x HTTP/1.1", "Transfer-Encoding: foo"),
    "bad Content-Length": http_request("POST /data/x HTTP/1.1", "Content-Length: abc"),
    "two Content-Lengths": http_request(
        "POST /data/x HTTP/1.1", "Content-Length: 1", "Content-Length: 2", body=b"ab"
    ),
    "bad header name": http_request("GET / HTTP/1.1", "Bad Name: v"),
    "folded header": http_request("GET / HTTP/1.1", "X-A: a", " b"),
    "unknown expectation": http_request("GET /data/x HTTP/1.1", "Expect: magic"),
    "SCRIPT_NAME header": http_request("GET /data/x HTTP/1.1", "SCRIPT_NAME: /elsewhere"),
    "contradictory scheme headers": http_request(
        "GET /data/x HTTP/1.1", "X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"
    ),
    "lone CRLF": b"\r\n",
    "two CRLFs": b"\r\n\r\n",
    "non-ASCII path": http_request("GET /été HTTP/1.1"),
    "POST to a key": http_request("POST /data/x HTTP/1.1", "Content-Length: 0"),
    "percent-encoded junk": http_request("GET /%ff HTTP/1.1"),
    "percent-encoded junk key": http_request("GET /data/%ff%00 HTTP/1.1"),
    "HEAD of nothing": http_request("HEAD /nope HTTP/1.1"),
    "HTTP/1.0 without Host": b"GET /nope HTTP/1.0\r\n\r\n",
}


@pytest.mark.parametrize("raw", RAW_REQUESTS.values(), ids=RAW_REQUESTS.keys())
def test_every_answer_of_the_port_is_json_and_no_5xx(gunicorn_port, raw):
    answers = _answers(raw, gunicorn_port)
    if raw.strip(b"\r\n"):  # a blank line alone is no request, and gets no answer
        assert answers
    for status, headers, body in answers:
        assert status < 500, (status, body)
        assert headers["content-type"] == "application/json"
        if not raw.startswith(b"HEAD "):
            answer = json.loads(body)
            assert status < 400 or answer["status"] == status
            assert b"Traceback" not in body
            assert b"<" not in body  # no HTML, no request quoted back


@pytest.mark.parametrize("method", ["GET", "OPTIONS", "HEAD"])
def test_the_longest_key_the_app_accepts_fits_in_gunicorns_request_line(gunicorn_port, method):
    key = "k" * KEY_MAX_LENGTH_LIMIT
    [(status, _, _)] = _answers(http_request(f"{method} /data/{key} HTTP/1.1"), gunicorn_port)
    assert status == 200
    [(status, _, _)] = _answers(http_request(f"{method} /data/{key}k HTTP/1.1"), gunicorn_port)
    assert status in (400, 414)


def test_a_key_length_gunicorn_would_refuse_stops_start_up():
    assert config.from_env({"CACHE_APP_KEY_MAX_LENGTH": str(KEY_MAX_LENGTH_LIMIT)})
    with pytest.raises(ConfigError, match="CACHE_APP_KEY_MAX_LENGTH: at most"):
        config.from_env({"CACHE_APP_KEY_MAX_LENGTH": str(KEY_MAX_LENGTH_LIMIT + 1)})


def test_an_error_escaping_the_app_is_a_json_500_without_its_text():
    cfg = Config()
    worker = JsonErrorThreadWorker(0, os.getpid(), [], None, 30, cfg, Logger(cfg))
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        worker.handle_error(None, server_side, ("127.0.0.1", 1), RuntimeError("secret detail"))
        server_side.close()
        response = http.client.HTTPResponse(client_side)
        response.begin()
        body = response.read()
    worker.tmp.close()
    assert response.status == 500
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(body) == {"error": "Internal Server Error", "status": 500}
