"""A budget of extra backend calls, as a share of requests over a sliding window (Envoy's retry budget).

Retries (``GATEWAY_RETRY_BUDGET``: at most 20 % of the requests of the last
``GATEWAY_RETRY_BUDGET_WINDOW_S``) and hedges (a policy's ``hedge.max_share``) each draw on
one: a request is counted with :meth:`Budget.request`; an extra call happens only if
:meth:`Budget.spend` says so. ``minimum`` extra calls per window are always allowed, so a
quiet gateway can still retry its first failures (Finagle's ``minRetriesPerSec`` idea).
The window is a ring of ``slots`` counters; a count leaves the window with its slot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Budget:
    """``spend()`` is True while extra calls in the window are fewer than ``share`` × requests + ``minimum``."""

    def __init__(
        self,
        share: float,
        window_s: float,
        *,
        minimum: int = 0,
        slots: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.share = share
        self.window_s = window_s
        self.minimum = minimum
        self.slot_s = window_s / slots
        self.clock = clock
        self.ring: deque[list[float]] = deque()  # [slot start, requests, spent]
        self.requests = 0
        self.spent = 0
        self.denied = 0

    def _current(self) -> list[float]:
        now = self.clock()
        start = now - now % self.slot_s
        if not self.ring or self.ring[-1][0] != start:
            self.ring.append([start, 0, 0])
            horizon = now - self.window_s
            while self.ring[0][0] + self.slot_s <= horizon:
                _, requests, spent = self.ring.popleft()
                self.requests -= int(requests)
                self.spent -= int(spent)
        return self.ring[-1]

    def request(self) -> None:
        """One request arrived."""
        self._current()[1] += 1
        self.requests += 1

    def allows(self) -> bool:
        """Whether one more extra call fits now."""
        self._current()
        return self.spent < self.share * self.requests + self.minimum

    def spend(self) -> bool:
        """Take one extra call from the budget; False (and counted as denied) when it is used up."""
        slot = self._current()
        if self.spent >= self.share * self.requests + self.minimum:
            self.denied += 1
            return False
        slot[2] += 1
        self.spent += 1
        return True
