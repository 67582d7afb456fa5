"""HTTP routes: /data/<key>, /healthz, /metrics, and JSON errors for everything else."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from redis.exceptions import RedisError
from werkzeug.exceptions import BadRequest, HTTPException

from . import metrics

log = logging.getLogger(__name__)
bp = Blueprint("cache_app", __name__)


@bp.get("/data/<path:key>")
def data(key: str) -> Response:
    settings = current_app.config["SETTINGS"]
    if len(key) > settings.key_max_length:
        raise BadRequest(f"key is longer than {settings.key_max_length} characters")
    if not settings.key_re.fullmatch(key):
        raise BadRequest(f"key must match {settings.key_pattern}")
    answer = current_app.extensions["cache_aside"].get(key)
    response = jsonify(key=key, value=answer.value, source=answer.source)
    response.headers["X-Cache"] = answer.status
    return response


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    clients = current_app.extensions["redis_clients"]
    try:
        # Writer and reader are one client when reads are not sent to a replica.
        for client in {id(c): c for c in clients.values()}.values():
            client.ping()
    except RedisError as error:
        return jsonify(status="unavailable", reason=f"redis: {error}"), 503
    return jsonify(status="ok"), 200


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


def _start_timer() -> None:
    g.started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("started", None)
    if started is not None:
        rule = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.latency(rule).observe(time.perf_counter() - started)
    return response


def _http_error(error: HTTPException) -> tuple[Response, int]:
    code = error.code or 500
    return jsonify(error=error.name, message=error.description, status=code), code


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unhandled error", exc_info=error)
    return jsonify(error="Internal Server Error", status=500), 500


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
