"""HTTP routes: /data/<key>, /healthz, /metrics (to allowed networks only), and JSON errors.

The routes close over the app's settings and cache instead of looking them up through Flask's
context proxies, and latency is timed by a thin WSGI wrapper instead of before/after hooks: on a
warm hit the whole request costs a few hundred microseconds, and those lookups were a visible part.
For the same reason /data's answer is encoded by one JSON encoder made at import, where Flask's
jsonify makes an encoder per answer: in process, that took the gap between a warm hit and a bare
jsonify route from 12-14 to about 4 microseconds (of some 60). The bytes are the same.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException

from . import metrics
from .cache import CacheAside
from .clients import EXTENSION as REDIS_CLIENTS
from .clients import RedisClients
from .config import IPNetwork, Settings
from .health import FailureLog, failure_reason

log = logging.getLogger(__name__)

# The answer's JSON as Flask's jsonify writes it outside debug mode (compact, ASCII, keys in the
# order given), with one encoder made once: jsonify makes one per answer.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def endpoint_label(path: str) -> str:
    """The label of any PATH_INFO: "*" (OPTIONS *), "" (absolute-form without a path), junk..."""
    if not path.startswith("/"):
        return metrics.UNMATCHED
    return metrics.ENDPOINTS.get(path[1:].partition("/")[0], metrics.UNMATCHED)


class TimedWSGI:
    """Observes every request's duration in the latency histogram, errors included."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            endpoint = endpoint_label(environ.get("PATH_INFO", ""))
            metrics.TALLY.latency(endpoint, time.perf_counter() - started)


def _http_error(error: HTTPException) -> tuple[Response, int]:
    code = error.code or 500
    return jsonify(error=error.name, message=error.description, status=code), code


def client_allowed(remote_addr: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether the peer's address is in one of the networks; no address (a Unix socket) is not."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    # An IPv4 client of a dual-stack IPv6 socket shows as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unhandled error", exc_info=error)
    return jsonify(error="Internal Server Error", status=500), 500


def init_app(app: Flask) -> None:
    """Add the routes, the JSON error answers and the latency histogram to `app`, whose settings
    (app.config["SETTINGS"]), cache (app.extensions["cache_app"]) and Redis clients
    (app.extensions["redis_clients"]) are set.

    Registered on the app itself, not through a blueprint: a blueprint costs every request a
    walk over its names in Flask's request hooks, a visible part of a warm hit's few hundred
    microseconds.
    """
    settings: Settings = app.config["SETTINGS"]
    cache: CacheAside = app.extensions["cache_app"]
    clients: RedisClients = app.extensions[REDIS_CLIENTS]
    key_max_length = settings.key_max_length
    key_re = settings.key_re
    too_long = f"key is longer than {key_max_length} characters"
    bad_chars = f"key must match {settings.key_pattern}"
    distinct_clients = clients.distinct
    redis_failures = FailureLog()
    metrics_networks = settings.metrics_allowed_networks
    response_class = app.response_class
    encode = _ENCODER.encode

    @app.get("/data/<path:key>")
    def data(key: str) -> Response:
        if len(key) > key_max_length:
            raise BadRequest(too_long)
        if not key_re.fullmatch(key):
            raise BadRequest(bad_chars)
        answer = cache.get(key)
        body = encode({"key": key, "value": answer.value, "source": answer.source})
        response = response_class(body + "\n", mimetype="application/json")
        response.headers.add("X-Cache", answer.status)  # a new response: nothing to replace
        return response

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        try:
            for client in distinct_clients:
                client.ping()
        except RedisError as error:
            redis_failures.failed(error)
            return jsonify(status="unavailable", reason=failure_reason(error)), 503
        redis_failures.recovered()
        # This worker's local copy: "live" while Redis reports changes to it, "down" when it
        # cannot (hits then go to Redis, slower but correct), "off" when turned off.
        local = "off" if cache.near is None else "live" if cache.near.live else "down"
        return jsonify(status="ok", local_cache=local), 200

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        if not client_allowed(request.remote_addr, metrics_networks):
            raise Forbidden("metrics are served to allowed networks only")
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    # Every answer of the app's port is JSON, also for paths it has no route for.
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.wsgi_app = TimedWSGI(app.wsgi_app)  # type: ignore[method-assign]
