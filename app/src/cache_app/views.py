"""HTTP routes: /data/<key>, /healthz, /metrics, and JSON errors for everything else.

The routes close over the app's settings and cache instead of looking them up through Flask's
context proxies, and latency is timed by a thin WSGI wrapper instead of before/after hooks: on a
warm hit the whole request costs a few hundred microseconds, and those lookups were a visible part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from flask import Flask, Response, jsonify
from redis.exceptions import RedisError
from werkzeug.exceptions import BadRequest, HTTPException

from . import metrics
from .cache import CacheAside
from .config import Settings

log = logging.getLogger(__name__)

# The histogram's endpoint label, from the path's first segment (bounded: unknown paths share one).
ENDPOINTS = {"data": "/data/<path:key>", "healthz": "/healthz", "metrics": "/metrics"}


class TimedWSGI:
    """Observes every request's duration in the latency histogram, errors included."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            segment = environ.get("PATH_INFO", "/").split("/", 2)[1]
            endpoint = ENDPOINTS.get(segment, "unmatched")
            metrics.latency(endpoint).observe(time.perf_counter() - started)


def _http_error(error: HTTPException) -> tuple[Response, int]:
    code = error.code or 500
    return jsonify(error=error.name, message=error.description, status=code), code


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
            return jsonify(status="unavailable", reason=f"redis: {error}"), 503
        # This worker's local copy: "live" while Redis reports changes to it, "down" when it
        # cannot (hits then go to Redis, slower but correct), "off" when turned off.
        local = "off" if cache.near is None else "live" if cache.near.live else "down"
        return jsonify(status="ok", local_cache=local), 200

    def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    app.add_url_rule("/data/<path:key>", view_func=data, methods=["GET"])
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/metrics", view_func=prometheus_metrics, methods=["GET"])
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.wsgi_app = TimedWSGI(app.wsgi_app)  # type: ignore[method-assign]
