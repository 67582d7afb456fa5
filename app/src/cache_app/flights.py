"""Single flight inside one process: concurrent calls for one key share one load."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")


class Flights(Generic[T]):
    """`run(key, load)`: the first caller for `key` runs `load`; callers arriving while it runs
    wait for it and get its result, or its exception. Once it ends, the next call loads again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Future[T]] = {}

    def run(self, key: str, load: Callable[[], T]) -> T:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                flight: Future[T] = Future()
                self._running[key] = flight
        if running is not None:
            return running.result()
        try:
            value = load()
        except BaseException as error:
            flight.set_exception(error)
            raise
        finally:
            with self._lock:
                del self._running[key]
        flight.set_result(value)
        return value
