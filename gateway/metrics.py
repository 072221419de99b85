"""Prometheus metrics in a per-app registry (so two apps in one process never collide).

With several gateway workers (``GATEWAY_WORKERS`` > 1) the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` before starting them: prometheus_client then keeps every value
in a memory-mapped file per process, and ``/metrics`` (:meth:`Metrics.render`) sums all
workers' files with its ``MultiProcessCollector``, so any worker answers for all of them.
Gauges say how they combine: in-flight requests and limits are summed over live workers, the
circuit state is the maximum.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
DIFF_BUCKETS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: set by the supervisor of several workers (prometheus_client's own variable)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "Metrics"]


class Metrics:
    """Counters and histograms labelled by model, backend and outcome."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # labels() costs a lock and a dict lookup per call; the hot path keeps the children
        self._request_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._backend_children: dict[tuple[str, str, str], Histogram] = {}
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by model, backend that answered (or none) and outcome",
            ["model", "backend", "outcome"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to answer inside the gateway",
            ["model", "backend", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backend_latency = Histogram(
            "gateway_backend_duration_seconds",
            "Backend round trip as the gateway saw it",
            ["model", "backend", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.shadow_diff = Histogram(
            "gateway_shadow_max_abs_diff",
            "Max absolute difference between the primary's and the shadow's predictions",
            ["model", "primary", "shadow"],
            buckets=DIFF_BUCKETS,
            registry=self.registry,
        )
        self.shadow_requests = Counter(
            "gateway_shadow_requests",
            "Shadow requests by outcome (dropped: shadow concurrency limit reached)",
            ["model", "shadow", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "gateway_retries",
            "Retries on the policy's next backend after a refused, reset or cut-off call, by outcome "
            "(ok, error, or denied by the retry budget: backend none)",
            ["model", "backend", "outcome"],
            registry=self.registry,
        )
        self.hedges = Counter(
            "gateway_hedges",
            "Hedged requests by the backend hedged to and outcome (won, lost: cancelled, failed, "
            "or denied by max_share: backend none)",
            ["model", "backend", "outcome"],
            registry=self.registry,
        )
        self.cancelled = Counter(
            "gateway_backend_cancelled",
            "Backend calls cancelled because another backend answered the same request first",
            ["model", "backend"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gateway_backend_in_flight",
            "Requests in flight per backend",
            ["backend"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.limit = Gauge(
            "gateway_backend_concurrency_limit",
            "The adaptive in-flight limit per backend (summed over workers)",
            ["backend"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.breaker_open = Gauge(
            "gateway_backend_circuit_open",
            "1 while the backend's circuit is not closed",
            ["backend"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def observe_request(self, model: str, backend: str, outcome: str, seconds: float) -> None:
        key = (model, backend, outcome)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (
                self.requests.labels(*key),
                self.request_latency.labels(*key),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_backend(self, model: str, backend: str, outcome: str, seconds: float) -> None:
        key = (model, backend, outcome)
        child = self._backend_children.get(key)
        if child is None:
            child = self._backend_children[key] = self.backend_latency.labels(*key)
        child.observe(seconds)

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's files when there are several."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
