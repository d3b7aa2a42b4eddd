"""Per-API-key rate limiting: a token bucket per key, in process memory."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Allows ``per_minute`` requests per key, refilled continuously, with a burst of as many."""

    def __init__(self, per_minute: int = 60_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, cost: float = 1.0) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - cost, now)
            return True
