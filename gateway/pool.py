"""The backends a gateway calls: clients, their guards, readiness, gauges, and closing them.

Built once from the settings, the manifest and the backend clients. A model is served by
the backends the settings name for it that have a client and that the model has artifacts
for (:attr:`contract.manifest.ModelEntry.backends`: no ONNX artifact, no ``torch_ort``); a
model no backend serves is left out. Each backend has a :class:`~gateway.backends.Guard`
(adaptive in-flight limit and circuit breaker) whose state ``/metrics`` shows as gauges.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import Gauge

from contract.manifest import ModelEntry

from .answer import Answer, check_result
from .backends import AimdLimit, BackendClient, CircuitBreaker, Guard, Readiness
from .config import Settings
from .errors import BackendError, UnknownBackendError, UnknownModelError
from .metrics import Metrics
from .payload import Payload


class BackendPool:
    """Every backend client, guarded; which backend serves which model."""

    def __init__(
        self, settings: Settings, models: dict[str, ModelEntry], clients: dict[str, BackendClient], metrics: Metrics
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.metrics = metrics
        self.serving: dict[str, list[str]] = {
            m: [b for b in settings.serving(m) if b in clients and b in info.backends]
            for m, info in models.items()
            if settings.serving(m)
        }
        self.models = {m: info for m, info in models.items() if self.serving.get(m)}
        self._gauges: dict[str, tuple[Gauge, Gauge]] = {}
        self.guards = {name: self._guard(name) for name in clients}
        for name in self.guards:
            self.publish(name)

    def _guard(self, name: str) -> Guard:
        settings = self.settings
        served = [m for m, backends in self.serving.items() if name in backends]
        client = self.clients[name]

        async def ready() -> bool:
            return bool(served) and (await client.ready(served[0])).ready

        guard = Guard(
            name,
            AimdLimit(settings.min_concurrency, settings.max_concurrency, slow_s=settings.slow_call_s),
            CircuitBreaker(
                settings.breaker_failures, settings.breaker_cooldown_s, ready, probe_timeout_s=settings.probe_timeout_s
            ),
            settings.retry_after_s,
        )
        gauge = self.metrics.in_flight.labels(name)
        guard.on_change = lambda n: gauge.set(n)

        def closed() -> None:  # a probe closed the circuit: slow start, and say so in /metrics at once
            guard.limiter.restart()
            self.publish(name)

        guard.breaker.on_close = closed
        return guard

    def publish(self, backend: str) -> None:
        """Show ``backend``'s current limit and circuit state in ``/metrics``."""
        guard = self.guards[backend]
        gauges = self._gauges.get(backend)
        if gauges is None:
            gauges = self._gauges[backend] = (
                self.metrics.limit.labels(backend),
                self.metrics.breaker_open.labels(backend),
            )
        gauges[0].set(guard.max_in_flight)
        gauges[1].set(float(guard.breaker.state != "closed"))

    # -- lookups ----------------------------------------------------------------------------

    def model(self, name: str) -> ModelEntry:
        """The served model ``name``, or 404 listing the served ones."""
        info = self.models.get(name)
        if info is None:
            raise UnknownModelError(f"unknown model {name[:64]!r}; served models: {', '.join(sorted(self.models))}")
        return info

    def check_serves(self, model: str, backend: str) -> None:
        """400 unless ``backend`` serves ``model``."""
        if backend not in self.serving[model]:
            serving = ", ".join(self.serving[model])
            raise UnknownBackendError(
                f"backend {backend[:32]!r} does not serve model {model}; choose one of: {serving}"
            )

    def refusal(self, backend: str) -> BackendError | None:
        """What ``backend``'s guard would refuse a call with now (shedding, circuit open), or None."""
        return self.guards[backend].refusal()

    # -- calls ------------------------------------------------------------------------------

    async def call(self, model: ModelEntry, backend: str, payload: Payload) -> Answer:
        """One guarded call, its answer checked against the contract (not recorded: the caller says how it went)."""
        client = self.clients[backend]
        result = await self.guards[backend].run(lambda: client.predict(model, payload))
        outputs = check_result(result, model, payload.rows, backend)
        return Answer(backend, result.answer, outputs, result.latency_s, result.server)

    def lost_to_hedge(self, backend: str) -> None:
        """``backend`` was too slow and a hedge beat it: a soft failure for its limit."""
        self.guards[backend].lost_to_hedge()
        self.publish(backend)

    # -- state ------------------------------------------------------------------------------

    async def readiness(self) -> dict[str, dict[str, Readiness]]:
        """Each model's backends' readiness, checked concurrently within the ready timeout."""
        pairs = [(m, b) for m in self.models for b in self.serving[m]]
        timeout_s = self.settings.ready_timeout_s

        async def check(model: str, backend: str) -> Readiness:
            try:
                return await asyncio.wait_for(self.clients[backend].ready(model), timeout_s)
            except TimeoutError:
                return Readiness(False, "unknown", f"no answer within {timeout_s:g} s")

        found = await asyncio.gather(*(check(m, b) for m, b in pairs))
        out: dict[str, dict[str, Readiness]] = {}
        for (model, backend), ready in zip(pairs, found, strict=True):
            out.setdefault(model, {})[backend] = ready
        return out

    def describe(self, name: str) -> dict[str, Any]:
        """``/v1/models``'s view of backend ``name``: its client, circuit and limits."""
        guard = self.guards[name]
        return {
            **self.clients[name].describe(),
            "circuit": guard.breaker.state,
            "in_flight": guard.in_flight,
            "max_in_flight": guard.max_in_flight,
            "limit_bounds": [guard.limiter.minimum, guard.limiter.maximum],
        }

    async def close(self) -> None:
        """Stop the breakers' probes and close every client."""
        for guard in self.guards.values():
            await guard.breaker.aclose()
        for client in self.clients.values():
            await client.close()
