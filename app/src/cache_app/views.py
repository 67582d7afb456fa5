"""HTTP routes: /data/<key>, /healthz, /metrics (to allowed networks only), and JSON errors.

The routes close over the app's settings and cache instead of looking them up through Flask's
context proxies, and latency is timed by a thin WSGI wrapper instead of before/after hooks: on a
warm hit the whole request costs a few hundred microseconds, and those lookups were a visible part.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from flask import Flask, Response, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException

from . import metrics
from .cache import CacheAside
from .config import IPNetwork, Settings
from .health import FailureLog, failure_reason

log = logging.getLogger(__name__)

# The histogram's endpoint label, from the path's first segment (bounded: unknown paths share one).
ENDPOINTS = {"data": "/data/<path:key>", "healthz": "/healthz", "metrics": "/metrics"}


def endpoint_label(path: str) -> str:
    """The label of any PATH_INFO: "*" (OPTIONS *), "" (absolute-form without a path), junk..."""
    if not path.startswith("/"):
        return "unmatched"
    return ENDPOINTS.get(path[1:].partition("/")[0], "unmatched")


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
            metrics.latency(endpoint).observe(time.perf_counter() - started)


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


def register(
    app: Flask, settings: Settings, cache: CacheAside, clients: Iterable[redis.Redis]
) -> None:
    key_max_length = settings.key_max_length
    key_re = settings.key_re
    too_long = f"key is longer than {key_max_length} characters"
    bad_chars = f"key must match {settings.key_pattern}"
    # Writer and reader are one client when reads are not sent to a replica.
    distinct_clients = list({id(c): c for c in clients}.values())
    redis_failures = FailureLog()
    metrics_networks = settings.metrics_allowed_networks

    def data(key: str) -> Response:
        if len(key) > key_max_length:
            raise BadRequest(too_long)
        if not key_re.fullmatch(key):
            raise BadRequest(bad_chars)
        answer = cache.get(key)
        response = jsonify(key=key, value=answer.value, source=answer.source)
        response.headers["X-Cache"] = answer.status
        return response

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

    def prometheus_metrics() -> Response:
        if not client_allowed(request.remote_addr, metrics_networks):
            raise Forbidden("metrics are served to allowed networks only")
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    app.add_url_rule("/data/<path:key>", view_func=data, methods=["GET"])
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/metrics", view_func=prometheus_metrics, methods=["GET"])
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.wsgi_app = TimedWSGI(app.wsgi_app)  # type: ignore[method-assign]
