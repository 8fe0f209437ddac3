"""Sliding-window rate limits of the confirmation endpoint (in memory, per process)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most `limit` requests per key in any `window` seconds. Refused requests do not count,
    so a client that backs off gets through again. Keys are bounded: when there are more than
    `max_keys`, idle ones are dropped, then the oldest."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float:
        """0 when `key` may make a request now, else the seconds until it may."""
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        now = self._clock()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < self.limit:
            return 0.0
        return max(hits[0] + self.window - now, 0.001)

    def record(self, key: str) -> None:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._prune()
            hits = self._hits[key] = deque()
        hits.append(self._clock())

    def _prune(self) -> None:
        cutoff = self._clock() - self.window
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= cutoff]:
            del self._hits[key]
        while len(self._hits) >= self._max_keys:
            del self._hits[next(iter(self._hits))]
