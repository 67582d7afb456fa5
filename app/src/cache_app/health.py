"""What /healthz tells a client when Redis fails: a short reason from a fixed list, never the
error's text (hosts, ports, TLS details), which goes to the log instead."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator

import redis.exceptions as redis_errors
from redis.sentinel import MasterNotFoundError, SlaveNotFoundError

log = logging.getLogger(__name__)

# First match wins, tried on the error and on the errors it was raised from.
REASONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (
        (redis_errors.AuthenticationError, redis_errors.AuthenticationWrongNumberOfArgsError),
        "redis refused the credentials",
    ),
    (
        (redis_errors.NoPermissionError, redis_errors.AuthorizationError),
        "redis refused the command to the app's user",
    ),
    (ssl.SSLCertVerificationError, "redis certificate not trusted"),
    (ssl.SSLError, "redis TLS handshake failed"),
    ((redis_errors.TimeoutError, TimeoutError), "redis timeout"),
    (MasterNotFoundError, "sentinels name no redis primary"),
    (SlaveNotFoundError, "sentinels name no redis replica"),
    (redis_errors.BusyLoadingError, "redis is loading its data"),
    ((redis_errors.ConnectionError, OSError), "redis unreachable"),
)
OTHER = "redis error"


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_reason(error: BaseException) -> str:
    causes = list(_chain(error))
    for kinds, reason in REASONS:
        if any(isinstance(cause, kinds) for cause in causes):
            return reason
    return OTHER


class FailureLog:
    """Logs each Redis failure /healthz sees once while it lasts, then the recovery."""

    def __init__(self) -> None:
        self._last: str | None = None

    def failed(self, error: BaseException) -> None:
        detail = f"{type(error).__name__}: {error}"
        if detail != self._last:
            self._last = detail
            log.warning("health check: redis unavailable: %s", detail)

    def recovered(self) -> None:
        if self._last is not None:
            self._last = None
            log.warning("health check: redis answers again")
