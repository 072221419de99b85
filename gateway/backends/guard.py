"""Protect each backend: an adaptive in-flight limit that sheds instead of queueing, and a circuit breaker.

The limit (:class:`AimdLimit`) is Netflix concurrency-limits' AIMD: it grows by one after a
success while at least half of it is in use, and shrinks by ``backoff`` after a drop (the
backend timed out, said it was overloaded, or answered slower than ``slow_s``). A survivor
that inherits its failed peer's traffic therefore takes the burst instead of shedding it,
and a backend that slows down is given less. It moves between ``minimum`` and ``maximum``
(``GATEWAY_MIN_CONCURRENCY``, ``GATEWAY_MAX_CONCURRENCY``); equal bounds make it fixed.

The breaker opens after ``failures`` consecutive connection failures, cut-off answers or
timeouts (or calls that lost to a hedge), refuses calls (503, ``Retry-After`` = the rest of
the cooldown), and once ``cooldown_s`` has passed asks the backend's readiness (TorchServe's
``/ping`` with its key, TF's model status) with a short timeout, in the background: ready
closes it, anything else opens it for another cooldown. No live request is ever the probe,
so a backend that accepts connections before it can answer costs no request a timeout.
Answers of any status (even errors) prove the backend is reachable and reset the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from ..errors import BackendError, BackendOverloadedError, BackendTimeoutError, CircuitOpenError

T = TypeVar("T")
State = Literal["closed", "open", "half_open"]
#: readiness check of a backend: True when it can serve now (never raises)
Probe = Callable[[], Awaitable[bool]]

log = logging.getLogger("gateway.guard")


class AimdLimit:
    """Additive increase, multiplicative decrease of the number of requests allowed in flight."""

    def __init__(self, minimum: int, maximum: int, *, backoff: float = 0.9, slow_s: float = 1.0) -> None:
        self.minimum = max(1, min(minimum, maximum))
        self.maximum = max(self.minimum, maximum)
        self.backoff = backoff
        self.slow_s = slow_s
        self.value = float(self.minimum)

    @property
    def limit(self) -> int:
        return int(self.value)

    def success(self, latency_s: float, in_flight: int) -> None:
        """A call answered; ``in_flight`` counts it."""
        if latency_s > self.slow_s:
            self.drop()
        elif 2 * in_flight >= self.value:
            self.value = min(float(self.maximum), self.value + 1.0)

    def drop(self) -> None:
        self.value = max(float(self.minimum), self.value * self.backoff)

    def restart(self) -> None:
        self.value = float(self.minimum)


class CircuitBreaker:
    """Per-backend breaker; ``clock`` is injectable for tests, ``probe`` checks readiness when the cooldown ends."""

    def __init__(
        self,
        failures: int,
        cooldown_s: float,
        probe: Probe | None = None,
        *,
        probe_timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.probe = probe
        self.probe_timeout_s = probe_timeout_s
        self.clock = clock
        self.consecutive = 0
        self.opened_at: float | None = None
        self.probing = False
        self.probes = 0
        #: called when a probe closes the circuit (the guard restarts its limit from the minimum)
        self.on_close: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self.probing or self.clock() - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def refusal(self, backend: str) -> CircuitOpenError | None:
        """The error a call gets now, or None when it may go through."""
        if self.opened_at is None:
            return None
        remaining = self.cooldown_s - (self.clock() - self.opened_at)
        if remaining <= 0 and not self.probing:
            self._start_probe()  # a clock-driven test, or a probe task that was lost: probe now
        return CircuitOpenError(
            f"backend {backend} is failing; circuit open, readiness probe in {max(remaining, 0):.1f} s",
            backend,
            max(remaining, 1.0),
        )

    def success(self) -> None:
        self.consecutive = 0

    def failure(self) -> None:
        self.consecutive += 1
        if self.opened_at is None and self.consecutive >= self.threshold:
            self.opened_at = self.clock()
            self._start_probe()

    def close(self) -> None:
        self.consecutive = 0
        self.opened_at = None

    # -- the readiness probe ------------------------------------------------------------

    def _start_probe(self) -> None:
        if self.probe is None or (self._task is not None and not self._task.done()):
            return
        try:
            self._task = asyncio.get_running_loop().create_task(self._probe_loop())
        except RuntimeError:  # no running loop (a synchronous test): the next call in a loop starts it
            self._task = None

    async def _probe_loop(self) -> None:
        assert self.probe is not None
        while self.opened_at is not None:
            wait = self.cooldown_s - (self.clock() - self.opened_at)
            if wait > 0:
                await asyncio.sleep(wait)
            self.probing = True
            self.probes += 1
            try:
                ready = await asyncio.wait_for(self.probe(), self.probe_timeout_s)
            except Exception:  # noqa: BLE001 -- a probe that fails or times out means not ready
                ready = False
            finally:
                self.probing = False
            if ready:
                self.close()
                if self.on_close is not None:
                    self.on_close()
            else:
                self.opened_at = self.clock()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Guard:
    """Admission for one backend: breaker first, then the adaptive in-flight limit (no queue)."""

    def __init__(self, backend: str, limit: AimdLimit, breaker: CircuitBreaker, retry_after_s: float) -> None:
        self.backend = backend
        self.limiter = limit
        self.breaker = breaker
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        breaker.on_close = limit.restart  # slow start: a backend back from the dead gets the minimum first
        #: called with the in-flight count after every change (the metrics' gauge)
        self.on_change: Callable[[int], None] = lambda n: None

    @property
    def max_in_flight(self) -> int:
        """The limit now."""
        return self.limiter.limit

    def refusal(self) -> BackendError | None:
        """Why a call would be refused now (circuit open, or the limit reached), or None."""
        if self.in_flight >= self.limiter.limit:
            return BackendOverloadedError(
                f"backend {self.backend} has {self.in_flight} requests in flight (limit {self.limiter.limit}); "
                "shedding load",
                self.backend,
                self.retry_after_s,
            )
        return self.breaker.refusal(self.backend)

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` if admitted; record its effect on the limit and the breaker."""
        refused = self.refusal()
        if refused is not None:
            raise refused
        self.in_flight += 1
        self.on_change(self.in_flight)
        start = time.perf_counter()
        try:
            result = await call()
        except BackendError as exc:
            if exc.connection_failure:
                self.breaker.failure()
            else:
                self.breaker.success()  # it answered (even with an error), so it is reachable
            if isinstance(exc, (BackendTimeoutError, BackendOverloadedError)):
                self.limiter.drop()
            raise
        else:
            self.breaker.success()
            self.limiter.success(time.perf_counter() - start, self.in_flight)
            return result
        finally:
            self.in_flight -= 1
            self.on_change(self.in_flight)

    def lost_to_hedge(self) -> None:
        """A call here was cancelled because another backend answered first: a slow call, a soft failure."""
        self.breaker.failure()
        self.limiter.drop()
