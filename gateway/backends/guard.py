"""Protect each backend: a concurrency limit that sheds instead of queueing, and a circuit breaker.

The breaker opens after ``failures`` consecutive connection failures or timeouts, refuses calls
(503, ``Retry-After`` = the rest of the cooldown) until ``cooldown_s`` has passed, then
lets exactly one probe through (half-open): success closes it, failure opens it again.
Answers of any status (even errors) prove the backend is reachable and close it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from ..errors import (
    BackendError,
    BackendOverloadedError,
    BackendTimeoutError,
    BackendUnavailableError,
    CircuitOpenError,
)

T = TypeVar("T")
State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Per-backend breaker; ``clock`` is injectable for tests."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.consecutive = 0
        self.opened_at: float | None = None
        self.probing = False

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self.probing or self.clock() - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def before(self, backend: str) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go through now."""
        if self.opened_at is None:
            return
        remaining = self.cooldown_s - (self.clock() - self.opened_at)
        if remaining > 0 or self.probing:
            raise CircuitOpenError(
                f"backend {backend} is failing; circuit open, next probe in {max(remaining, 0):.1f} s",
                backend,
                max(remaining, 1.0),
            )
        self.probing = True  # this caller is the half-open probe

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None
        self.probing = False

    def failure(self) -> None:
        self.consecutive += 1
        if self.probing or self.consecutive >= self.threshold:
            self.opened_at = self.clock()
            self.probing = False

    def release_probe(self) -> None:
        """The probe ended without telling anything about reachability (e.g. cancelled)."""
        self.probing = False


class Guard:
    """Admission for one backend: breaker first, then the in-flight limit (no queue)."""

    def __init__(self, backend: str, max_in_flight: int, breaker: CircuitBreaker, retry_after_s: float) -> None:
        self.backend = backend
        self.max_in_flight = max_in_flight
        self.breaker = breaker
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` if admitted; record its effect on the breaker."""
        if self.in_flight >= self.max_in_flight:
            raise BackendOverloadedError(
                f"backend {self.backend} has {self.in_flight} requests in flight (limit {self.max_in_flight}); "
                "shedding load",
                self.backend,
                self.retry_after_s,
            )
        self.breaker.before(self.backend)
        self.in_flight += 1
        decided = False
        try:
            result = await call()
            decided = True
            self.breaker.success()
            return result
        except BackendError as exc:
            decided = True
            if isinstance(exc, BackendTimeoutError) or (
                isinstance(exc, BackendUnavailableError) and exc.connection_failure
            ):
                self.breaker.failure()
            else:
                self.breaker.success()  # it answered (even with an error), so it is reachable
            raise
        finally:
            self.in_flight -= 1
            if not decided:
                self.breaker.release_probe()
