"""Routing policies: which backend(s) answer a request, in the order to try them.

Every policy returns an ordered candidate list: the backend it picked first, then the
others in the order a retry or a hedge should try them (``fixed`` has none). The data plane
moves to the next candidate only when the previous one failed (refused, reset, cut off,
shed or circuit open) or, with hedging, was too slow. Randomness comes from an injectable
``random.Random`` so tests can seed it.
"""

from __future__ import annotations

import abc
import random

from .config import PolicyConfig


class Policy(abc.ABC):
    """Chooses backends for one model and learns from their latencies."""

    name: str

    @abc.abstractmethod
    def choose(self) -> list[str]:
        """Backends to try, in order (at least one)."""

    @abc.abstractmethod
    def members(self) -> list[str]:
        """Every backend this policy may choose."""

    def observe(self, backend: str, latency_s: float, ok: bool) -> None:  # noqa: B027 -- optional hook
        """A call to ``backend`` finished; only latency-aware policies care."""

    def describe(self) -> dict[str, object]:
        return {"policy": self.name}


class Fixed(Policy):
    name = "fixed"

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def choose(self) -> list[str]:
        return [self.backend]

    def members(self) -> list[str]:
        return [self.backend]

    def describe(self) -> dict[str, object]:
        return {"policy": self.name, "backend": self.backend}


class Weighted(Policy):
    """Each request goes to one backend with probability proportional to its weight."""

    name = "weighted"

    def __init__(self, weights: dict[str, float], rng: random.Random) -> None:
        self.backends = [b for b, w in weights.items() if w > 0]
        self.weights = [weights[b] for b in self.backends]
        self.rng = rng
        self.ranked = sorted(self.backends, key=lambda b: -weights[b])

    def choose(self) -> list[str]:
        first = self.rng.choices(self.backends, weights=self.weights)[0]
        return [first, *(b for b in self.ranked if b != first)]

    def members(self) -> list[str]:
        return list(self.backends)

    def describe(self) -> dict[str, object]:
        return {"policy": self.name, "weights": dict(zip(self.backends, self.weights, strict=True))}


class Fastest(Policy):
    """Power of two choices on an EWMA of latency, plus a probe share so no backend starves.

    A backend never measured is tried first. A failure counts as ``failure_penalty_s``
    of latency, so a failing backend loses traffic but still gets probes.
    """

    name = "fastest"

    def __init__(
        self,
        backends: list[str],
        rng: random.Random,
        alpha: float = 0.2,
        probe_share: float = 0.05,
        failure_penalty_s: float = 1.0,
    ) -> None:
        self.backends = list(backends)
        self.rng = rng
        self.alpha = alpha
        self.probe_share = probe_share
        self.failure_penalty_s = failure_penalty_s
        self.ewma: dict[str, float] = {}

    def choose(self) -> list[str]:
        unmeasured = [b for b in self.backends if b not in self.ewma]
        if unmeasured:
            first = unmeasured[0]
        elif len(self.backends) == 1:
            first = self.backends[0]
        elif self.rng.random() < self.probe_share:
            first = self.rng.choice(self.backends)
        else:
            a, b = self.rng.sample(self.backends, 2)
            first = a if self.ewma[a] <= self.ewma[b] else b
        rest = sorted((b for b in self.backends if b != first), key=lambda b: self.ewma.get(b, 0.0))
        return [first, *rest]

    def members(self) -> list[str]:
        return list(self.backends)

    def observe(self, backend: str, latency_s: float, ok: bool) -> None:
        if backend not in self.backends:
            return
        value = latency_s if ok else max(latency_s, self.failure_penalty_s)
        old = self.ewma.get(backend)
        self.ewma[backend] = value if old is None else old + self.alpha * (value - old)

    def describe(self) -> dict[str, object]:
        return {
            "policy": self.name,
            "backends": self.backends,
            "probe_share": self.probe_share,
            "ewma_ms": {b: round(v * 1000, 3) for b, v in self.ewma.items()},
        }


class Failover(Policy):
    name = "failover"

    def __init__(self, order: list[str]) -> None:
        self.order = list(order)

    def choose(self) -> list[str]:
        return list(self.order)

    def members(self) -> list[str]:
        return list(self.order)

    def describe(self) -> dict[str, object]:
        return {"policy": self.name, "order": self.order}


def make_policy(config: PolicyConfig, serving: list[str], rng: random.Random) -> Policy:
    """The policy object for one model's configuration."""
    if config.policy == "fixed":
        assert config.backend is not None  # checked by PolicyConfig
        return Fixed(config.backend)
    if config.policy == "weighted":
        return Weighted({str(b): w for b, w in (config.weights or {}).items()}, rng)
    if config.policy == "fastest":
        return Fastest(list(config.backends or serving), rng, config.alpha, config.probe_share)
    return Failover(list(config.order or serving))
