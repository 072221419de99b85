"""Shadow traffic: after the caller has its answer, mirror the request to another backend.

Fire-and-forget tasks with their own concurrency bound: when ``max_concurrency`` shadow
calls are already running, a new one is dropped (and counted), never queued, so shadow
traffic cannot slow or change the caller's answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("gateway.shadow")


class ShadowRunner:
    """Owns the running shadow tasks; closed (cancelled) with the app."""

    def __init__(self, max_concurrency: int) -> None:
        self.max_concurrency = max_concurrency
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def submit(self, job: Callable[[], Awaitable[None]]) -> bool:
        """Start ``job`` in the background unless the bound is reached; False if dropped."""
        if len(self.tasks) >= self.max_concurrency:
            self.dropped += 1
            return False
        task = asyncio.get_running_loop().create_task(self._run(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _run(self, job: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(0)  # let the caller's answer go out first
        try:
            await job()
        except Exception:  # a shadow failure must never surface anywhere but the log
            log.exception("shadow request failed unexpectedly")

    async def idle(self, timeout_s: float = 5.0) -> None:
        """Wait (bounded) until no shadow request is running."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout_s)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5.0)
