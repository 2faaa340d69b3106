"""A per-key request rate limit (requests per minute), as Twelve Labs and Hive apply per API key.

A sliding window: a key may make ``per_minute`` requests in any 60 seconds. Per worker (a
deployment of N workers behind a balancer allows up to N times the limit per key); a request
forwarded to another worker, or a share of one asked of it, counts there too.

>>> r = RateLimiter(2)
>>> [r.allow("k", now) for now in (0.0, 1.0, 2.0)], r.allow("other", 2.0), r.retry_after("k", 2.0)
([True, True, False], True, 58)
>>> r.allow("k", 60.0)
True
>>> RateLimiter(0).allow("k", 0.0)
True
"""

from __future__ import annotations

import math
import threading
from collections import deque

WINDOW = 60.0


class RateLimiter:
    def __init__(self, per_minute: int, max_keys: int = 10_000):
        self.per_minute, self.max_keys = per_minute, max_keys
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        """Count a request of ``key`` at ``now`` (seconds) if the limit allows it."""
        if self.per_minute <= 0:
            return True
        with self._lock:
            q = self._seen.setdefault(key, deque())
            while q and q[0] <= now - WINDOW:
                q.popleft()
            if len(q) >= self.per_minute:
                return False
            q.append(now)
            if len(self._seen) > self.max_keys:  # forget idle keys (bounded memory)
                for k in [k for k, v in self._seen.items() if not v or v[-1] <= now - WINDOW]:
                    del self._seen[k]
            return True

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until ``key`` may send again (the ``Retry-After`` header)."""
        with self._lock:
            q = self._seen.get(key)
            return max(1, math.ceil(q[0] + WINDOW - now)) if q else 1
