"""Prometheus metrics, named after TF Serving's (``:tensorflow:serving:...``), on their own registry.

Exposed on the REST port at monitoring.config's path. ``processed_batch_size`` is the
one that shows batching at work: a count above the ``le="1"`` bucket means requests
were merged.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_LATENCY_BUCKETS = tuple(float(2**i * 100) for i in range(16))  # 100 us .. ~3.3 s


class Metrics:
    """The server's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            ":tensorflow:serving:request_count",
            "Requests answered, by model, entry point and status",
            ["model_name", "entrypoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Predict latency in microseconds, by model and entry point",
            ["model_name", "entrypoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # TF Serving's own names for the time a request waits for its batch and the model's run time
        self.queuing = Histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Microseconds a request waited for its batch to start (queue and batching wait)",
            ["model_name"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.runtime = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Microseconds of the TF call that ran the request's batch",
            ["model_name"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        # the compatible server's own: where a REST predict's time went (the binary has no such split)
        self.phases = Histogram(
            ":duoserve:compat:rest_phase_latency",
            "Microseconds of each phase of a REST predict: total, pre (parse and check), inference "
            "(batch execution), post (render)",
            ["model_name", "phase"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Rows in each batch run by the model (after merging concurrent requests)",
            ["model_name"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
