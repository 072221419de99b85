"""What a prediction means, independent of HTTP: the one object the REST and gRPC adapters call.

:class:`DataPlane` assembles four parts and answers for them:

* :class:`~gateway.pool.BackendPool`: clients, guards, which backend serves which model,
  readiness, gauges, closing;
* :class:`~gateway.router.Router`: candidates by policy, retries, hedging;
* :class:`~gateway.mirror.Mirror`: shadow copies and ``/compare``;
* :class:`~gateway.recorder.Recorder`: one call per outcome, fanned out to stats and
  metrics, and the accounting of each request (:meth:`DataPlane.request`).

It imports no web framework (an import-linter contract says so): the adapters parse and
answer, this decides.
"""

from __future__ import annotations

import random
from typing import Any

from contract.manifest import ModelEntry

from .answer import Answer, check_answer, check_result
from .backends import BackendClient, Readiness
from .cluster import Cluster
from .config import Settings
from .metrics import Metrics
from .mirror import Mirror
from .payload import Payload
from .pool import BackendPool
from .recorder import Recorder, Tally
from .router import Router
from .shadow import ShadowRunner
from .stats import Stats

__all__ = ["Answer", "DataPlane", "check_answer", "check_result"]


class DataPlane:
    """The gateway's domain object; built in the lifespan from settings and backend clients."""

    def __init__(
        self,
        settings: Settings,
        models: dict[str, ModelEntry],
        clients: dict[str, BackendClient],
        *,
        rng: random.Random | None = None,
        stats: Stats | None = None,
        metrics: Metrics | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.settings = settings
        self.cluster = cluster
        self.rng = rng or random.Random()
        self.recorder = Recorder(stats or Stats(settings.stats_window_s), metrics or Metrics(), cluster)
        self.pool = BackendPool(settings, models, clients, self.recorder.metrics)
        self.router = Router(settings, self.pool, self.recorder, self.rng)
        self.shadow = ShadowRunner(settings.shadow_max_concurrency)
        self.mirror = Mirror(self.router, self.pool, self.recorder, self.shadow, self.rng)
        # what the adapters and ``/v1/models`` read
        self.stats = self.recorder.stats
        self.metrics = self.recorder.metrics
        self.clients = self.pool.clients
        self.guards = self.pool.guards
        self.serving = self.pool.serving
        self.models = self.pool.models
        self.configs = self.router.configs
        self.policies = self.router.policies
        self.retry_budget = self.router.retry_budget

    # -- requests ---------------------------------------------------------------------------

    def model(self, name: str) -> ModelEntry:
        """The served model ``name``, or 404 listing the served ones."""
        return self.pool.model(name)

    def request(self, model: str) -> Tally:
        """Count one request for ``model`` once, whatever its outcome (use as a context manager)."""
        return self.recorder.request(model, model in self.pool.models)

    def admit(self, model: str, requested: str | None) -> None:
        """Refuse (503, or 400 for an unknown backend) before the body is read when no candidate would take it."""
        self.router.admit(model, requested)

    async def predict(self, model: ModelEntry, payload: Payload, requested: str | None) -> Answer:
        """Route by policy (or the caller's backend); move on past failures; hedge a slow first backend."""
        answer = await self.router.route(model, payload, requested)
        self.mirror.maybe_shadow(model, payload, answer)
        return answer

    async def compare(self, model: ModelEntry, payload: Payload) -> dict[str, Any]:
        """Every serving backend, concurrently; each one's answer or error, and their agreement."""
        return await self.mirror.compare(model, payload)

    # -- state ------------------------------------------------------------------------------

    def local_dump(self) -> dict[str, Any]:
        """This process's statistics as plain JSON (what a sibling worker merges)."""
        return self.recorder.local_dump(self.shadow.dropped)

    async def stats_snapshot(self) -> dict[str, Any]:
        """``/v1/stats``: this worker's statistics, merged with every sibling's when there are several."""
        return await self.recorder.snapshot(self.shadow.dropped)

    async def reset_stats(self) -> None:
        """Forget every recorded latency and error, in every worker."""
        await self.recorder.reset()

    def reset_local(self) -> None:
        self.recorder.reset_local()

    async def readiness(self) -> dict[str, dict[str, Readiness]]:
        """Each model's backends' readiness, checked concurrently within the ready timeout."""
        return await self.pool.readiness()

    def describe_backend(self, name: str) -> dict[str, Any]:
        return self.pool.describe(name)

    async def close(self) -> None:
        await self.shadow.close()
        await self.pool.close()
