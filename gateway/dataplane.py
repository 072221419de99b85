"""What a prediction means, independent of HTTP: route, call, check, record, shadow, compare.

The routes parse and answer; everything in between is here. Backend clients hide the
wire formats; policies pick backends; guards shed load and break circuits; stats and
metrics record every call.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import Gauge

from contract.manifest import ModelEntry
from contract.tensors import OutputError, check_output_arrays, read_outputs

from .backends import AimdLimit, BackendClient, BackendResult, CircuitBreaker, Guard, Readiness
from .budget import Budget
from .cluster import Cluster
from .compare import agreement, max_abs_diff
from .config import HedgeConfig, PolicyConfig, Settings
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
        #: requests this process answered (any outcome) since the last reset
        self.answered = 0
        self.clients = clients
        self.rng = rng or random.Random()
        self.stats = stats or Stats(settings.stats_window_s)
        self.metrics = metrics or Metrics()
        self.serving: dict[str, list[str]] = {
            m: [b for b in settings.serving(m) if b in clients and b in info.backends]
            for m, info in models.items()
            if settings.serving(m)
        }
        self.models = {m: info for m, info in models.items() if self.serving.get(m)}
        self.configs: dict[str, PolicyConfig] = {m: settings.policy_for(m) for m in self.models}
        self.policies: dict[str, Policy] = {
            m: make_policy(self.configs[m], self.serving[m], self.rng) for m in self.models
        }
        self.retry_budget = Budget(
            settings.retry_budget, settings.retry_budget_window_s, minimum=settings.retry_budget_min
        )
        self.hedge_budgets = {
            m: Budget(c.hedge.max_share, settings.retry_budget_window_s) for m, c in self.configs.items() if c.hedge
        }
        self._hedge_delays: dict[tuple[str, str], tuple[float, float | None]] = {}
        self._gauges: dict[str, tuple[Gauge, Gauge]] = {}
        self.guards = {name: self._guard(name) for name in clients}
        self.shadow = ShadowRunner(settings.shadow_max_concurrency)
        for name in self.guards:
            self._publish(name)

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
            self._publish(name)

        guard.breaker.on_close = closed
        return guard

    def _publish(self, backend: str) -> None:
        guard = self.guards[backend]
        gauges = self._gauges.get(backend)
        if gauges is None:
            gauges = self._gauges[backend] = (
                self.metrics.limit.labels(backend),
                self.metrics.breaker_open.labels(backend),
            )
        gauges[0].set(guard.max_in_flight)
        gauges[1].set(float(guard.breaker.state != "closed"))

    # -- lookups ----------------------------------------------------------------------

    def model(self, name: str) -> ModelEntry:
        info = self.models.get(name)
        if info is None:
            raise UnknownModelError(f"unknown model {name[:64]!r}; served models: {', '.join(sorted(self.models))}")
        return info

    def candidates(self, model: str, requested: str | None) -> list[str]:
        """The backends to try: the caller's choice, or the model's policy (first choice, then the others)."""
        if requested is None:
            return self.policies[model].choose()
        self._check_requested(model, requested)
        return [requested]

    def _check_requested(self, model: str, requested: str) -> None:
        if requested not in self.serving[model]:
            serving = ", ".join(self.serving[model])
            raise UnknownBackendError(
                f"backend {requested[:32]!r} does not serve model {model}; choose one of: {serving}"
            )

    def admit(self, model: str, requested: str | None) -> None:
        """Refuse now, before the body is read, when no backend the request could go to would take it.

        Raises the first backend's refusal (503: shedding, or circuit open) or 400 for an unknown backend.
        """
        if requested is not None:
            self._check_requested(model, requested)
            members = [requested]
        else:
            members = self.policies[model].members()
        refusal: BackendError | None = None
        for backend in members:
            found = self.guards[backend].refusal()
            if found is None:
                return
            refusal = refusal or found
        assert refusal is not None
        self.stats.record_error(model, members[0], refusal.kind)
        self.metrics.observe_backend(model, members[0], refusal.kind, 0.0)
        raise refusal

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
            self._publish(backend)
            raise
        self.stats.record(model.name, backend, result.latency_s, result.server)
        self.metrics.observe_backend(model.name, backend, "ok", result.latency_s)
        self.policies[model.name].observe(backend, result.latency_s, ok=True)
        self._publish(backend)
        return Answer(backend, result.answer, outputs, result.latency_s, result.server)

    async def predict(self, model: ModelEntry, payload: Payload, requested: str | None) -> Answer:
        """Route by policy (or the caller's backend); move on past failures; hedge a slow first backend."""
        candidates = self.candidates(model.name, requested)
        self.retry_budget.request()
        hedge = self.configs[model.name].hedge if requested is None else None
        if hedge is not None and len(candidates) > 1:
            self.hedge_budgets[model.name].request()
            answer = await self._hedged(model, payload, candidates, hedge)
        else:
            answer = await self._attempts(model, payload, candidates)
        self._maybe_shadow(model, payload, answer)
        return answer

    def _moves_on(self, exc: BackendError) -> bool:
        return isinstance(exc, BackendUnavailableError) or exc.retryable

    async def _attempts(
        self, model: ModelEntry, payload: Payload, candidates: list[str], error: BackendError | None = None
    ) -> Answer:
        """Try ``candidates`` in order. Past our own refusals (shed, circuit open) for free; past a call that
        went out and failed (refused, reset, cut off) once, if the retry budget allows: inference is pure."""
        retried = False
        for backend in candidates:
            if error is not None and error.retryable:
                if retried:
                    raise error
                if not self.retry_budget.spend():
                    self.stats.count(model.name, "retries_denied")
                    self.metrics.retries.labels(model.name, "none", "denied").inc()
                    raise error
                retried = True
                self.stats.count(model.name, "retries")
            try:
                answer = await self.call(model, backend, payload)
            except BackendError as exc:
                if retried:
                    self.metrics.retries.labels(model.name, backend, "error").inc()
                if not self._moves_on(exc):
                    raise
                error = exc
                continue
            if retried:
                self.metrics.retries.labels(model.name, backend, "ok").inc()
            return answer
        assert error is not None
        raise error

    def _hedge_delay(self, model: str, backend: str, hedge: HedgeConfig) -> float | None:
        """Seconds to wait for ``backend`` before hedging: fixed, or its live percentile (cached 0.25 s)."""
        q = hedge.percentile()
        if q is None:
            return float(hedge.after) / 1000.0
        now = time.monotonic()
        cached = self._hedge_delays.get((model, backend))
        if cached is not None and cached[0] > now:
            return cached[1]
        delay = self.stats.percentile_s(model, backend, q)
        self._hedge_delays[(model, backend)] = (now + 0.25, delay)
        return delay

    async def _hedged(self, model: ModelEntry, payload: Payload, candidates: list[str], hedge: HedgeConfig) -> Answer:
        """The first backend; if it has not answered by the hedge delay, the next one too; first good answer wins."""
        first, rest = candidates[0], candidates[1:]
        delay = self._hedge_delay(model.name, first, hedge)
        if delay is None or self.guards[first].refusal() is not None:
            return await self._attempts(model, payload, candidates)  # nothing measured yet, or refused at once
        primary = asyncio.get_running_loop().create_task(self.call(model, first, payload))
        tasks = {primary: first}
        try:
            done, _ = await asyncio.wait({primary}, timeout=delay)
            if not done:
                target = next((b for b in rest if self.guards[b].refusal() is None), None)
                if target is not None and self.hedge_budgets[model.name].spend():
                    self.stats.count(model.name, "hedges")
                    tasks[asyncio.get_running_loop().create_task(self.call(model, target, payload))] = target
                else:
                    self.stats.count(model.name, "hedges_denied")
                    self.metrics.hedges.labels(model.name, "none", "denied").inc()
            return await self._first_good(model, payload, tasks, primary, rest)
        finally:
            losers = [task for task in tasks if not task.done()]
            for task in losers:
                task.cancel()
            if losers:  # let them unwind (connection closed, in-flight count released) before answering
                await asyncio.wait(losers)

    async def _first_good(
        self,
        model: ModelEntry,
        payload: Payload,
        tasks: dict[asyncio.Task[Answer], str],
        primary: asyncio.Task[Answer],
        rest: list[str],
    ) -> Answer:
        pending = set(tasks)
        errors: dict[asyncio.Task[Answer], BackendError] = {}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is None:
                    self._settle_hedge(model.name, tasks, task, pending)
                    return task.result()
                if not isinstance(exc, BackendError):
                    raise exc
                errors[task] = exc
        hedge = next((t for t in tasks if t is not primary), None)
        if hedge is not None:
            self.metrics.hedges.labels(model.name, tasks[hedge], "failed").inc()
        error = errors[primary]
        if hedge is None and self._moves_on(error):  # no hedge went out: the usual retry on the next backend
            return await self._attempts(model, payload, rest, error)
        raise error

    def _settle_hedge(
        self,
        model: str,
        tasks: dict[asyncio.Task[Answer], str],
        winner: asyncio.Task[Answer],
        pending: set[asyncio.Task[Answer]],
    ) -> None:
        """Count the hedge's outcome; the loser still running is cancelled (by the caller's ``finally``)."""
        if len(tasks) < 2:
            return
        hedge_backend = list(tasks.values())[1]
        won = tasks[winner] == hedge_backend
        self.metrics.hedges.labels(model, hedge_backend, "won" if won else "lost").inc()
        if won:
            self.stats.count(model, "hedges_won")
        for loser in pending:
            backend = tasks[loser]
            self.stats.count(model, "cancelled")
            self.metrics.cancelled.labels(model, backend).inc()
            if loser is not winner and backend != hedge_backend:
                self.guards[backend].lost_to_hedge()  # the first backend was too slow: a soft failure
                self._publish(backend)

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
        self.answered += 1
        self.metrics.observe_request(model, backend, outcome, seconds)

    def local_dump(self) -> dict[str, Any]:
        """This process's statistics as plain JSON (what a sibling worker merges)."""
        index = self.cluster.index if self.cluster else 0
        return {
            "worker": {"index": index, "pid": os.getpid(), "answered": self.answered},
            "stats": self.stats.dump(),
            "shadow_dropped": self.shadow.dropped,
        }

    async def stats_snapshot(self) -> dict[str, Any]:
        """``/v1/stats``: this worker's statistics, merged with every sibling's when there are several."""
        dumps = [self.local_dump()]
        missing: list[int] = []
        if self.cluster is not None:
            others, missing = await self.cluster.ask("dump")
            dumps += others
        stats = Stats.merged([d["stats"] for d in dumps], self.settings.stats_window_s, self.stats.slots)
        workers = sorted((d["worker"] for d in dumps), key=lambda w: int(w["index"]))
        return {
            **stats.snapshot(),
            "shadow_dropped": sum(int(d["shadow_dropped"]) for d in dumps),
            "workers": workers,
            "workers_missing": missing,
        }

    async def reset_stats(self) -> None:
        """Forget every recorded latency and error, in every worker."""
        self.reset_local()
        if self.cluster is not None:
            await self.cluster.ask("reset")

    def reset_local(self) -> None:
        self.stats.reset()
        self.answered = 0

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
            "limit_bounds": [guard.limiter.minimum, guard.limiter.maximum],
        }

    async def close(self) -> None:
        await self.shadow.close()
        for guard in self.guards.values():
            await guard.breaker.aclose()
        for client in self.clients.values():
            await client.close()
