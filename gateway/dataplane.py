"""What a prediction means, independent of HTTP: route, call, check, record, shadow, compare.

The routes parse and answer; everything in between is here. Backend clients hide the
wire formats; policies pick backends; guards shed load and break circuits; stats and
metrics record every call.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.manifest import ModelEntry
from contract.tensors import OutputError, check_output_arrays, read_outputs

from .backends import BackendClient, BackendResult, CircuitBreaker, Guard, Readiness
from .compare import agreement, max_abs_diff
from .config import PolicyConfig, Settings
from .errors import (
    BackendError,
    BackendUnavailableError,
    BadBackendResponseError,
    GatewayError,
    UnknownBackendError,
    UnknownModelError,
)
from .metrics import Metrics
from .payload import Payload
from .policies import Policy, make_policy
from .shadow import ShadowRunner
from .stats import Stats


@dataclass(frozen=True)
class Answer:
    """One backend's checked answer: its JSON as the caller gets it, and the outputs as arrays."""

    backend: str
    answer: dict[str, Any]
    outputs: dict[str, np.ndarray]
    latency_s: float
    server: str


def check_answer(answer: dict[str, Any], model: ModelEntry, rows: int, backend: str) -> dict[str, np.ndarray]:
    """The outputs of a backend's answer, checked against the model's contract, or 502 saying what was wrong."""
    try:
        return read_outputs(answer, model, rows)
    except OutputError as exc:
        raise BadBackendResponseError(f"backend {backend} answered badly: {exc}", backend) from None


def check_result(result: BackendResult, model: ModelEntry, rows: int, backend: str) -> dict[str, np.ndarray]:
    """:func:`check_answer`, or the same check of the arrays a binary answer carries."""
    if result.outputs is None:
        return check_answer(result.answer, model, rows, backend)
    try:
        return check_output_arrays(result.outputs, model, rows)
    except OutputError as exc:
        raise BadBackendResponseError(f"backend {backend} answered badly: {exc}", backend) from None


def _in_flight(guard: Guard) -> Callable[[], float]:
    return lambda: float(guard.in_flight)


def _circuit_open(guard: Guard) -> Callable[[], float]:
    return lambda: float(guard.breaker.state != "closed")


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
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.rng = rng or random.Random()
        self.stats = stats or Stats(settings.stats_window_s)
        self.metrics = metrics or Metrics()
        self.serving: dict[str, list[str]] = {
            m: [b for b in settings.serving(m) if b in clients] for m in models if settings.serving(m)
        }
        self.models = {m: info for m, info in models.items() if self.serving.get(m)}
        self.configs: dict[str, PolicyConfig] = {m: settings.policy_for(m) for m in self.models}
        self.policies: dict[str, Policy] = {
            m: make_policy(self.configs[m], self.serving[m], self.rng) for m in self.models
        }
        self.guards = {
            name: Guard(
                name,
                settings.max_concurrency,
                CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s),
                settings.retry_after_s,
            )
            for name in clients
        }
        self.shadow = ShadowRunner(settings.shadow_max_concurrency)
        for name, guard in self.guards.items():
            self.metrics.in_flight.labels(name).set_function(_in_flight(guard))
            self.metrics.breaker_open.labels(name).set_function(_circuit_open(guard))

    # -- lookups ----------------------------------------------------------------------

    def model(self, name: str) -> ModelEntry:
        info = self.models.get(name)
        if info is None:
            raise UnknownModelError(f"unknown model {name[:64]!r}; served models: {', '.join(sorted(self.models))}")
        return info

    def candidates(self, model: str, requested: str | None) -> list[str]:
        """The backends to try: the caller's choice, or the model's policy."""
        if requested is None:
            return self.policies[model].choose()
        if requested not in self.serving[model]:
            serving = ", ".join(self.serving[model])
            raise UnknownBackendError(
                f"backend {requested[:32]!r} does not serve model {model}; choose one of: {serving}"
            )
        return [requested]

    # -- calls ------------------------------------------------------------------------

    async def call(self, model: ModelEntry, backend: str, payload: Payload) -> Answer:
        """One guarded backend call, checked and recorded."""
        client = self.clients[backend]
        start = time.perf_counter()
        try:
            result = await self.guards[backend].run(lambda: client.predict(model, payload))
            outputs = check_result(result, model, payload.rows, backend)
        except BackendError as exc:
            elapsed = time.perf_counter() - start
            self.stats.record_error(model.name, backend, exc.kind)
            self.metrics.observe_backend(model.name, backend, exc.kind, elapsed)
            self.policies[model.name].observe(backend, elapsed, ok=False)
            raise
        self.stats.record(model.name, backend, result.latency_s, result.server)
        self.metrics.observe_backend(model.name, backend, "ok", result.latency_s)
        self.policies[model.name].observe(backend, result.latency_s, ok=True)
        return Answer(backend, result.answer, outputs, result.latency_s, result.server)

    async def predict(self, model: ModelEntry, payload: Payload, requested: str | None) -> Answer:
        """Route by policy (or the caller's backend); fail over only past failures before an answer."""
        error: BackendUnavailableError | None = None
        for backend in self.candidates(model.name, requested):
            try:
                answer = await self.call(model, backend, payload)
            except BackendUnavailableError as exc:
                error = exc
                continue
            self._maybe_shadow(model, payload, answer)
            return answer
        assert error is not None
        raise error

    def _maybe_shadow(self, model: ModelEntry, payload: Payload, answer: Answer) -> None:
        shadow = self.configs[model.name].shadow
        if shadow is None or shadow.backend == answer.backend or self.rng.random() >= shadow.share:
            return
        target = shadow.backend

        async def job() -> None:
            try:
                result = await self.guards[target].run(lambda: self.clients[target].predict(model, payload))
                outputs = check_result(result, model, payload.rows, target)
            except BackendError as exc:
                self.stats.record_shadow(model.name, answer.backend, target, None, None, exc.kind)
                self.metrics.shadow_requests.labels(model.name, target, exc.kind).inc()
                return
            diff = max_abs_diff(answer.outputs, outputs)
            self.stats.record_shadow(model.name, answer.backend, target, result.latency_s, diff, None)
            self.metrics.shadow_requests.labels(model.name, target, "ok").inc()
            self.metrics.shadow_diff.labels(model.name, answer.backend, target).observe(diff)

        if not self.shadow.submit(job):
            self.metrics.shadow_requests.labels(model.name, target, "dropped").inc()

    async def compare(self, model: ModelEntry, payload: Payload) -> dict[str, Any]:
        """Every serving backend, concurrently; each one's answer or error, and their agreement."""
        backends = self.serving[model.name]
        outcomes = await asyncio.gather(*(self.call(model, b, payload) for b in backends), return_exceptions=True)
        results: list[dict[str, Any]] = []
        arrays: dict[str, dict[str, np.ndarray]] = {}
        errors: list[GatewayError] = []
        for backend, outcome in zip(backends, outcomes, strict=True):
            if isinstance(outcome, Answer):
                arrays[backend] = outcome.outputs
                results.append(
                    {
                        "backend": backend,
                        "server": outcome.server,
                        "latency_ms": round(outcome.latency_s * 1000, 3),
                        **outcome.answer,
                    }
                )
            elif isinstance(outcome, GatewayError):
                errors.append(outcome)
                results.append({"backend": backend, "error": {"status": outcome.status, "detail": outcome.detail}})
            else:
                raise outcome
        if not arrays:
            raise errors[0]
        return {"model": model.name, "results": results, **agreement(arrays)}

    # -- state ------------------------------------------------------------------------

    def observe_request(self, model: str, backend: str, outcome: str, seconds: float) -> None:
        self.metrics.observe_request(model, backend, outcome, seconds)

    async def readiness(self) -> dict[str, dict[str, Readiness]]:
        """Each model's backends' readiness, checked concurrently within the ready timeout."""
        pairs = [(m, b) for m in self.models for b in self.serving[m]]

        async def check(model: str, backend: str) -> Readiness:
            try:
                return await asyncio.wait_for(self.clients[backend].ready(model), self.settings.ready_timeout_s)
            except TimeoutError:
                return Readiness(False, "unknown", f"no answer within {self.settings.ready_timeout_s:g} s")

        found = await asyncio.gather(*(check(m, b) for m, b in pairs))
        out: dict[str, dict[str, Readiness]] = {}
        for (model, backend), ready in zip(pairs, found, strict=True):
            out.setdefault(model, {})[backend] = ready
        return out

    def describe_backend(self, name: str) -> dict[str, Any]:
        guard = self.guards[name]
        return {
            **self.clients[name].describe(),
            "circuit": guard.breaker.state,
            "in_flight": guard.in_flight,
            "max_in_flight": guard.max_in_flight,
        }

    async def close(self) -> None:
        await self.shadow.close()
        for client in self.clients.values():
            await client.close()
