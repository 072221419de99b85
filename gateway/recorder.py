"""Every outcome the gateway counts, recorded once and fanned out to stats and metrics.

One method per outcome: the data plane says what happened (a backend answered, a call
failed, a retry was denied, a hedge won, a shadow was dropped, a request was answered) and
the recorder writes it to :class:`~gateway.stats.Stats` (``/v1/stats``, mergeable across
workers) and :class:`~gateway.metrics.Metrics` (``/metrics``), whichever of the two
carries it. Request accounting lives here too: :meth:`Recorder.request` is the one place
the ``/v1``, ``/v2`` and gRPC adapters count a request, whatever its outcome.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any

from .cluster import Cluster
from .errors import GatewayError
from .metrics import Metrics
from .stats import Stats


class Tally:
    """One request being answered: counted once, as ``ok`` (:meth:`ok`) or as the gateway error it ended with.

    Use as a context manager around the adapter's work; a :class:`GatewayError` leaving it is
    counted with its ``kind`` (and ``backend``, if a backend failed) when the model is served;
    an unknown model is not counted, and neither is an unexpected exception (a logged 500).
    """

    __slots__ = ("_model", "_recorder", "_served", "started")

    def __init__(self, recorder: Recorder, model: str, served: bool) -> None:
        self._recorder = recorder
        self._model = model
        self._served = served
        #: ``time.perf_counter()`` when the adapter began (``Server-Timing`` counts from here)
        self.started = time.perf_counter()

    def ok(self, backend: str) -> None:
        """``backend`` answered: count the request as ``ok``."""
        self._recorder.answered_request(self._model, backend, "ok", time.perf_counter() - self.started)

    def __enter__(self) -> Tally:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if isinstance(exc, GatewayError) and self._served:
            backend = getattr(exc, "backend", "none")
            self._recorder.answered_request(self._model, backend, exc.kind, time.perf_counter() - self.started)


class Recorder:
    """This process's stats and metrics, written through one call per outcome."""

    def __init__(self, stats: Stats, metrics: Metrics, cluster: Cluster | None = None) -> None:
        self.stats = stats
        self.metrics = metrics
        self.cluster = cluster
        #: requests this process answered (any outcome) since the last reset
        self.answered = 0

    # -- requests -----------------------------------------------------------------------

    def request(self, model: str, served: bool) -> Tally:
        """The accounting of one request for ``model`` (``served``: whether the gateway serves it)."""
        return Tally(self, model, served)

    def answered_request(self, model: str, backend: str, outcome: str, seconds: float) -> None:
        self.answered += 1
        self.metrics.observe_request(model, backend, outcome, seconds)

    # -- backend calls --------------------------------------------------------------------

    def call_ok(self, model: str, backend: str, latency_s: float, server: str) -> None:
        self.stats.record(model, backend, latency_s, server)
        self.metrics.observe_backend(model, backend, "ok", latency_s)

    def call_failed(self, model: str, backend: str, kind: str, seconds: float) -> None:
        """A call failed, or was refused before it went out (``seconds`` 0)."""
        self.stats.record_error(model, backend, kind)
        self.metrics.observe_backend(model, backend, kind, seconds)

    # -- retries and hedges ---------------------------------------------------------------

    def retry(self, model: str) -> None:
        self.stats.count(model, "retries")

    def retry_denied(self, model: str) -> None:
        self.stats.count(model, "retries_denied")
        self.metrics.retries.labels(model, "none", "denied").inc()

    def retried(self, model: str, backend: str, ok: bool) -> None:
        self.metrics.retries.labels(model, backend, "ok" if ok else "error").inc()

    def hedge(self, model: str) -> None:
        self.stats.count(model, "hedges")

    def hedge_denied(self, model: str) -> None:
        self.stats.count(model, "hedges_denied")
        self.metrics.hedges.labels(model, "none", "denied").inc()

    def hedge_settled(self, model: str, backend: str, won: bool) -> None:
        self.metrics.hedges.labels(model, backend, "won" if won else "lost").inc()
        if won:
            self.stats.count(model, "hedges_won")

    def hedge_failed(self, model: str, backend: str) -> None:
        self.metrics.hedges.labels(model, backend, "failed").inc()

    def cancelled(self, model: str, backend: str) -> None:
        self.stats.count(model, "cancelled")
        self.metrics.cancelled.labels(model, backend).inc()

    # -- shadow -----------------------------------------------------------------------------

    def shadow_ok(self, model: str, primary: str, shadow: str, latency_s: float, diff: float) -> None:
        self.stats.record_shadow(model, primary, shadow, latency_s, diff, None)
        self.metrics.shadow_requests.labels(model, shadow, "ok").inc()
        self.metrics.shadow_diff.labels(model, primary, shadow).observe(diff)

    def shadow_failed(self, model: str, primary: str, shadow: str, kind: str) -> None:
        self.stats.record_shadow(model, primary, shadow, None, None, kind)
        self.metrics.shadow_requests.labels(model, shadow, kind).inc()

    def shadow_dropped(self, model: str, shadow: str) -> None:
        self.metrics.shadow_requests.labels(model, shadow, "dropped").inc()

    # -- reading, merging, resetting --------------------------------------------------------

    def percentile_s(self, model: str, backend: str, q: float) -> float | None:
        return self.stats.percentile_s(model, backend, q)

    def local_dump(self, shadow_dropped: int) -> dict[str, Any]:
        """This process's statistics as plain JSON (what a sibling worker merges)."""
        index = self.cluster.index if self.cluster else 0
        return {
            "worker": {"index": index, "pid": os.getpid(), "answered": self.answered},
            "stats": self.stats.dump(),
            "shadow_dropped": shadow_dropped,
        }

    async def snapshot(self, shadow_dropped: int) -> dict[str, Any]:
        """``/v1/stats``: this worker's statistics, merged with every sibling's when there are several."""
        dumps = [self.local_dump(shadow_dropped)]
        missing: list[int] = []
        if self.cluster is not None:
            others, missing = await self.cluster.ask("dump")
            dumps += others
        stats = Stats.merged([d["stats"] for d in dumps], self.stats.window_s, self.stats.slots)
        workers = sorted((d["worker"] for d in dumps), key=lambda w: int(w["index"]))
        return {
            **stats.snapshot(),
            "shadow_dropped": sum(int(d["shadow_dropped"]) for d in dumps),
            "workers": workers,
            "workers_missing": missing,
        }

    async def reset(self) -> None:
        """Forget every recorded latency and error, in every worker."""
        self.reset_local()
        if self.cluster is not None:
            await self.cluster.ask("reset")

    def reset_local(self) -> None:
        self.stats.reset()
        self.answered = 0
