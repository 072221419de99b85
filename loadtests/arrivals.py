"""Open-loop Poisson arrivals for Locust users (MLPerf LoadGen's Server scenario).

Locust is closed loop: a user waits for its answer before its next request. An open-loop
offered rate ``R`` is built from ``N`` users, each with its own seeded Poisson schedule of
rate ``R / N``: the superposition of independent Poisson processes is a Poisson process of
rate ``R``. A user's next request is due at its *scheduled* time whether or not earlier
answers were slow, so a slow server cannot slow the arrivals down (coordinated omission):
a request that goes out late because its user was still waiting is sent at once, and its
latency is counted from its scheduled time (the lateness is added), as LoadGen does. When
users are too few or the generator's CPU is saturated, requests go out late and fewer are
sent than offered; the runner compares achieved with offered and flags the probe.

No Locust here: the runner's users call :meth:`PoissonSchedule.wait`, the tests check the
schedule's statistics directly.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field


def users_for(rate: float, latency_budget_s: float, *, minimum: int = 4, maximum: int = 256) -> int:
    """Users an open-loop rate needs: twice the requests in flight if each took ``latency_budget_s``."""
    if rate <= 0:
        raise ValueError(f"offered rate must be positive (got {rate})")
    return max(minimum, min(maximum, math.ceil(2 * rate * latency_budget_s) + 2))


def user_seed(seed: int, label: str, index: int) -> int:
    """A stable per-user seed: the run's seed, the probe's label and the user's index."""
    return _stable_hash(f"{seed}/{label}/{index}")


def _stable_hash(text: str) -> int:
    # Python's hash() of a str is salted per process; this one is the same everywhere
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


@dataclass
class PoissonSchedule:
    """Arrival times of one user: exponential gaps of mean ``1 / rate``, from ``start``."""

    rate: float
    seed: int
    start: float
    _rng: random.Random = field(init=False, repr=False)
    _next: float = field(init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be positive (got {self.rate})")
        self._rng = random.Random(self.seed)
        # the first arrival is one gap after start, as for any other, so users do not fire together
        self._next = self.start + self._rng.expovariate(self.rate)

    @property
    def due(self) -> float:
        """When the next request is scheduled."""
        return self._next

    def advance(self) -> float:
        """Take the scheduled arrival; returns its time and moves to the next one."""
        current = self._next
        self._next += self._rng.expovariate(self.rate)
        return current

    def wait(self, now: float) -> float:
        """Seconds to sleep before the next request is due (0 when it is already late)."""
        return max(0.0, self._next - now)


def gaps(rate: float, seed: int, count: int) -> list[float]:
    """``count`` inter-arrival gaps of one schedule (for tests and for the report's description)."""
    schedule = PoissonSchedule(rate, seed, 0.0)
    times = [schedule.advance() for _ in range(count + 1)]
    return [b - a for a, b in itertools.pairwise(times)]
