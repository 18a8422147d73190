"""Per-key rate limits: a token bucket per API key and scope, in this process.

A key may make ``rate`` requests a second of one scope on average, with bursts of
up to ``burst``; beyond that the API answers 429 with ``Retry-After`` (seconds until
a token is back). The buckets live in the API process: with N replicas a key may
make up to N times the rate (put a shared limit in the load balancer when that
matters).

>>> clock = iter([0.0, 0.0, 0.0, 0.5]).__next__
>>> limits = RateLimits({"profiles": 2.0}, burst_seconds=1.0, clock=clock)
>>> limits.take("k", "profiles"), limits.take("k", "profiles")
(None, None)
>>> limits.take("k", "profiles")  # the bucket is empty: wait half a second
0.5
>>> limits.take("k", "profiles") is None  # half a second later: one token is back
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any


class RateLimits:
    """Token buckets keyed by (API key name, scope); scopes without a rate are unlimited."""

    def __init__(
        self,
        rates: Mapping[Any, float],
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for scope, rate in rates.items():
            if rate <= 0:
                raise ValueError(f"rate limit of scope {scope!r} must be positive, got {rate}")
        self.rates: dict[str, float] = {str(k): float(v) for k, v in rates.items()}
        self.burst_seconds = burst_seconds
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, scope: str) -> float | None:
        """Spend one token of ``key``'s ``scope`` bucket: ``None`` when allowed, else the
        seconds to wait before the next request can pass."""
        rate = self.rates.get(scope)
        if rate is None:
            return None
        capacity = max(1.0, rate * self.burst_seconds)
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get((key, scope), (capacity, now))
            tokens = min(capacity, tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[(key, scope)] = (tokens - 1.0, now)
                return None
            self._buckets[(key, scope)] = (tokens, now)
            return (1.0 - tokens) / rate
