"""A breaker in front of Redis: fail fast while it is down, try again after a pause.

When a Redis call fails (connection refused, timeout, cluster down), the gate
opens: for ``retry_seconds`` further calls fail at once with
:class:`RedisDownError` instead of each waiting for a timeout, so the API keeps
answering (degraded) within its latency budget. The next call after the pause
goes through; if it succeeds the gate closes and the API has recovered by
itself.

>>> gate = RedisGate(retry_seconds=60)
>>> gate.call(lambda: 1 + 1)
2
>>> def broken():
...     raise ConnectionError("refused")
>>> gate.call(broken)
Traceback (most recent call last):
...
serving.redis_gate.RedisDownError: Redis unavailable: ConnectionError: refused
>>> gate.is_open, gate.last_error
(True, 'ConnectionError: refused')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _redis_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, OSError]
    try:
        from redis import exceptions as rex

        errors += [
            rex.ConnectionError,
            rex.TimeoutError,
            rex.BusyLoadingError,
            rex.ClusterDownError,
            rex.ClusterError,
            rex.ReadOnlyError,
            rex.MasterDownError,
            rex.TryAgainError,
        ]
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return tuple(errors)


REDIS_ERRORS = _redis_errors()


class RedisDownError(RuntimeError):
    """Redis cannot be used right now."""


class RedisGate:
    """Circuit breaker for Redis calls (thread-safe)."""

    def __init__(self, retry_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0
        self.last_error: str | None = None
        self.failures = 0

    @property
    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, or :class:`RedisDownError` when Redis fails or the gate is open."""
        if self.is_open:
            raise RedisDownError(f"Redis unavailable: {self.last_error}")
        try:
            result = fn()
        except REDIS_ERRORS as error:
            self._trip(error)
            raise RedisDownError(f"Redis unavailable: {self.last_error}") from error
        if self.last_error is not None:
            with self._lock:
                self.last_error = None
        return result

    def _trip(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
            self._open_until = self._clock() + self.retry_seconds
