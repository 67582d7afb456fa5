"""The slow database the cache sits in front of: the value is the key upper-cased."""

from __future__ import annotations

import time

from . import metrics


class SlowStore:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def load(self, key: str) -> str:
        metrics.SLOW_STORE_CALLS.inc()
        time.sleep(self.delay)
        return key.upper()
