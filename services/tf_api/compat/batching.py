"""Server-side batching: concurrent requests' rows run as one TF call, split back in order.

Modelled on TF Serving's batch scheduler, configured by the same BatchingParameters:
each (model, version, signature) has a queue of batches; a task joins the open batch
if its rows fit under ``max_batch_size`` (else a new batch opens); a batch runs when it
is full or ``batch_timeout_micros`` after it opened, on one of ``num_batch_threads``
threads; while every thread is busy, newly arriving tasks keep filling the open batch,
so batches grow with load. More than ``max_enqueued_batches`` batches waiting gives
UNAVAILABLE (HTTP 503) with TF Serving's text. A task larger than ``max_batch_size``
runs as a batch of its own (TF Serving would refuse it unless large-batch splitting
is on). The TF call always runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from services.tf_api.compat.errors import Code, ServingError
from services.tf_api.compat.servables import RunFn
from services.tf_api.config import BatchingConfig

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]


@dataclass
class _Batch:
    deadline: float
    tasks: list[_Task] = field(default_factory=list)
    rows: int = 0
    full: bool = False


def _rows(inputs: dict[str, np.ndarray]) -> int:
    return int(next(iter(inputs.values())).shape[0]) if inputs else 0


class Batcher:
    """The batch queue of one signature of one servable."""

    def __init__(
        self,
        run: RunFn,
        config: BatchingConfig,
        executor: Executor,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._run = run
        self._config = config
        self._executor = executor
        self._on_batch = on_batch
        self._timeout = config.batch_timeout_micros / 1e6
        self._batches: deque[_Batch] = deque()
        self._free_threads = config.num_batch_threads

    async def submit(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run ``inputs`` as part of a batch; returns this task's own output rows."""
        loop = asyncio.get_running_loop()
        rows = _rows(inputs)
        task = _Task(inputs, rows, loop.create_future())
        batch = self._batches[-1] if self._batches else None
        if batch is None or batch.full or batch.rows + rows > self._config.max_batch_size:
            if len(self._batches) >= self._config.max_enqueued_batches:
                raise ServingError(Code.UNAVAILABLE, QUEUE_FULL)
            if batch is not None:
                batch.full = True  # a later batch exists, so this one is closed
            batch = _Batch(deadline=time.monotonic() + self._timeout)
            self._batches.append(batch)
            if self._timeout > 0:
                loop.call_later(self._timeout, self._expire, batch)
        batch.tasks.append(task)
        batch.rows += rows
        batch.full = batch.full or batch.rows >= self._config.max_batch_size
        self._dispatch()
        return await task.future

    def _expire(self, batch: _Batch) -> None:
        batch.full = True  # its timeout is over: run it as soon as a thread is free
        self._dispatch()

    def _dispatch(self) -> None:
        now = time.monotonic()
        while self._free_threads > 0 and self._batches:
            batch = self._batches[0]
            if not (batch.full or now >= batch.deadline):
                return
            self._batches.popleft()
            self._free_threads -= 1
            future = asyncio.get_running_loop().run_in_executor(self._executor, self._execute, batch)
            future.add_done_callback(functools.partial(self._finish, batch))

    def _execute(self, batch: _Batch) -> dict[str, np.ndarray]:
        if len(batch.tasks) == 1:
            return self._run(batch.tasks[0].inputs)
        merged = {k: np.concatenate([t.inputs[k] for t in batch.tasks]) for k in batch.tasks[0].inputs}
        return self._run(merged)

    def _finish(self, batch: _Batch, done: asyncio.Future[dict[str, np.ndarray]]) -> None:
        self._free_threads += 1
        if self._on_batch is not None:
            self._on_batch(batch.rows)
        error = done.exception()
        offset = 0
        for task in batch.tasks:
            if task.future.done():  # the caller went away (cancelled)
                offset += task.rows
                continue
            if error is not None:
                task.future.set_exception(error)
            else:
                outputs = done.result()
                task.future.set_result({k: v[offset : offset + task.rows] for k, v in outputs.items()})
            offset += task.rows
        self._dispatch()


class Unbatched:
    """Batching off: every request is its own TF call, still off the event loop."""

    def __init__(self, run: RunFn, executor: Executor, on_batch: Callable[[int], None] | None = None) -> None:
        self._run = run
        self._executor = executor
        self._on_batch = on_batch

    async def submit(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run ``inputs`` alone."""
        result = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, inputs)
        if self._on_batch is not None:
            self._on_batch(_rows(inputs))
        return result
