"""Requests that go to more than one backend: shadow copies of routed requests, and ``/compare``.

A shadow copy goes, after the caller has its answer, to the model's shadow backend for a
sampled share of requests (:class:`~gateway.shadow.ShadowRunner` bounds how many run); its
outputs are compared with the answer's and recorded, never returned. ``compare`` sends the
same input to every serving backend at once and reports each one's answer and their agreement.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np

from contract.manifest import ModelEntry

from .answer import Answer
from .compare import agreement, max_abs_diff
from .errors import BackendError, GatewayError
from .payload import Payload
from .pool import BackendPool
from .recorder import Recorder
from .router import Router
from .shadow import ShadowRunner


class Mirror:
    """Shadow traffic and comparisons over the router's calls and the pool's backends."""

    def __init__(
        self, router: Router, pool: BackendPool, recorder: Recorder, runner: ShadowRunner, rng: random.Random
    ) -> None:
        self.router = router
        self.pool = pool
        self.recorder = recorder
        self.runner = runner
        self.rng = rng

    def maybe_shadow(self, model: ModelEntry, payload: Payload, answer: Answer) -> None:
        """Mirror the request to the model's shadow backend, for its sampled share (never the answering one)."""
        shadow = self.router.configs[model.name].shadow
        if shadow is None or shadow.backend == answer.backend or self.rng.random() >= shadow.share:
            return
        target = shadow.backend

        async def job() -> None:
            try:
                found = await self.pool.call(model, target, payload)
            except BackendError as exc:
                self.recorder.shadow_failed(model.name, answer.backend, target, exc.kind)
                return
            diff = max_abs_diff(answer.outputs, found.outputs)
            self.recorder.shadow_ok(model.name, answer.backend, target, found.latency_s, diff)

        if not self.runner.submit(job):
            self.recorder.shadow_dropped(model.name, target)

    async def compare(self, model: ModelEntry, payload: Payload) -> dict[str, Any]:
        """Every serving backend, concurrently; each one's answer or error, and their agreement."""
        backends = self.pool.serving[model.name]
        outcomes = await asyncio.gather(
            *(self.router.call(model, b, payload) for b in backends), return_exceptions=True
        )
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
