"""Where a request goes: the model's policy picks candidates; retries move past failures; hedges race a slow one.

Inference is a pure function, so a request may be repeated elsewhere without doubling any
effect (see :mod:`gateway.errors` for which failures move on). Every call goes through
:meth:`Router.call`, which records its outcome once (:class:`~gateway.recorder.Recorder`)
and tells the policy how the backend did.
"""

from __future__ import annotations

import asyncio
import random
import time

from contract.manifest import ModelEntry

from .answer import Answer
from .budget import Budget
from .config import HedgeConfig, PolicyConfig, Settings
from .errors import BackendError, BackendUnavailableError
from .payload import Payload
from .policies import Policy, make_policy
from .pool import BackendPool
from .recorder import Recorder


def moves_on(exc: BackendError) -> bool:
    """Whether a failed call moves on to the next candidate (refused, shed, open, reset, cut off)."""
    return isinstance(exc, BackendUnavailableError) or exc.retryable


class Router:
    """Routing state per model: policy, retry budget, hedge budgets and delays."""

    def __init__(self, settings: Settings, pool: BackendPool, recorder: Recorder, rng: random.Random) -> None:
        self.pool = pool
        self.recorder = recorder
        self.configs: dict[str, PolicyConfig] = {m: settings.policy_for(m) for m in pool.models}
        self.policies: dict[str, Policy] = {m: make_policy(self.configs[m], pool.serving[m], rng) for m in pool.models}
        self.retry_budget = Budget(
            settings.retry_budget, settings.retry_budget_window_s, minimum=settings.retry_budget_min
        )
        self.hedge_budgets = {
            m: Budget(c.hedge.max_share, settings.retry_budget_window_s) for m, c in self.configs.items() if c.hedge
        }
        self._hedge_delays: dict[tuple[str, str], tuple[float, float | None]] = {}

    def candidates(self, model: str, requested: str | None) -> list[str]:
        """The backends to try: the caller's choice, or the model's policy (first choice, then the others)."""
        if requested is None:
            return self.policies[model].choose()
        self.pool.check_serves(model, requested)
        return [requested]

    def admit(self, model: str, requested: str | None) -> None:
        """Refuse now, before the body is read, when no backend the request could go to would take it.

        Raises the first backend's refusal (503: shedding, or circuit open) or 400 for an unknown backend.
        """
        if requested is not None:
            self.pool.check_serves(model, requested)
            members = [requested]
        else:
            members = self.policies[model].members()
        refusal: BackendError | None = None
        for backend in members:
            found = self.pool.refusal(backend)
            if found is None:
                return
            refusal = refusal or found
        assert refusal is not None
        self.recorder.call_failed(model, members[0], refusal.kind, 0.0)
        raise refusal

    async def call(self, model: ModelEntry, backend: str, payload: Payload) -> Answer:
        """One guarded backend call, checked and recorded."""
        start = time.perf_counter()
        try:
            answer = await self.pool.call(model, backend, payload)
        except BackendError as exc:
            elapsed = time.perf_counter() - start
            self.recorder.call_failed(model.name, backend, exc.kind, elapsed)
            self.policies[model.name].observe(backend, elapsed, ok=False)
            self.pool.publish(backend)
            raise
        self.recorder.call_ok(model.name, backend, answer.latency_s, answer.server)
        self.policies[model.name].observe(backend, answer.latency_s, ok=True)
        self.pool.publish(backend)
        return answer

    async def route(self, model: ModelEntry, payload: Payload, requested: str | None) -> Answer:
        """Route by policy (or the caller's backend); move on past failures; hedge a slow first backend."""
        candidates = self.candidates(model.name, requested)
        self.retry_budget.request()
        hedge = self.configs[model.name].hedge if requested is None else None
        if hedge is not None and len(candidates) > 1:
            self.hedge_budgets[model.name].request()
            return await self._hedged(model, payload, candidates, hedge)
        return await self.attempts(model, payload, candidates)

    async def attempts(
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
                    self.recorder.retry_denied(model.name)
                    raise error
                retried = True
                self.recorder.retry(model.name)
            try:
                answer = await self.call(model, backend, payload)
            except BackendError as exc:
                if retried:
                    self.recorder.retried(model.name, backend, ok=False)
                if not moves_on(exc):
                    raise
                error = exc
                continue
            if retried:
                self.recorder.retried(model.name, backend, ok=True)
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
        delay = self.recorder.percentile_s(model, backend, q)
        self._hedge_delays[(model, backend)] = (now + 0.25, delay)
        return delay

    async def _hedged(self, model: ModelEntry, payload: Payload, candidates: list[str], hedge: HedgeConfig) -> Answer:
        """The first backend; if it has not answered by the hedge delay, the next one too; first good answer wins."""
        first, rest = candidates[0], candidates[1:]
        delay = self._hedge_delay(model.name, first, hedge)
        if delay is None or self.pool.refusal(first) is not None:
            return await self.attempts(model, payload, candidates)  # nothing measured yet, or refused at once
        loop = asyncio.get_running_loop()
        primary = loop.create_task(self.call(model, first, payload))
        tasks = {primary: first}
        try:
            done, _ = await asyncio.wait({primary}, timeout=delay)
            if not done:
                target = next((b for b in rest if self.pool.refusal(b) is None), None)
                if target is not None and self.hedge_budgets[model.name].spend():
                    self.recorder.hedge(model.name)
                    tasks[loop.create_task(self.call(model, target, payload))] = target
                else:
                    self.recorder.hedge_denied(model.name)
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
            self.recorder.hedge_failed(model.name, tasks[hedge])
        error = errors[primary]
        if hedge is None and moves_on(error):  # no hedge went out: the usual retry on the next backend
            return await self.attempts(model, payload, rest, error)
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
        self.recorder.hedge_settled(model, hedge_backend, won=tasks[winner] == hedge_backend)
        for loser in pending:
            backend = tasks[loser]
            self.recorder.cancelled(model, backend)
            if loser is not winner and backend != hedge_backend:
                self.pool.lost_to_hedge(backend)  # the first backend was too slow: a soft failure
