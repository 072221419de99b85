"""Server-side batching: concurrent requests' rows run as one TF call, split back in order.

Modelled on TF Serving's batch scheduler, configured by the same BatchingParameters:
each (model, version, signature) has a queue of batches; a task joins the open batch if
its rows fit (else a new batch opens); a batch runs when it is full or
``batch_timeout_micros`` after it opened, on one of ``num_batch_threads`` threads; while
every thread is busy, newly arriving tasks keep filling the open batch, so batches grow
with load. More than ``max_enqueued_batches`` batches waiting gives UNAVAILABLE (HTTP 503)
with TF Serving's text.

As in TF Serving, a task larger than ``max_batch_size`` is refused (INVALID_ARGUMENT,
"Task size N is larger than maximum input batch size M"). With
``enable_large_batch_splitting`` a task may be larger than one execution batch: it is cut
into pieces that fill the open batch and then new ones of at most
``max_execution_batch_size`` rows, and the caller gets its rows back whole and in order.
Only tasks whose inputs have the same per-row shapes share a batch (a dynamic axis may
differ between requests; the compatible server never pads). The TF call always runs in a
thread, never on the event loop.
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

from services.tf_api.compat.errors import Code, ServingError, invalid
from services.tf_api.compat.servables import RunFn
from services.tf_api.config import BatchingConfig

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"
Shapes = tuple[tuple[int, ...], ...]


@dataclass
class Timing:
    """Where one request's time went inside the batcher (seconds): waiting for its batch to start
    (queue and batching wait), its batch's execution (merge, TF call, split) and the TF call alone."""

    queue_s: float = 0.0
    inference_s: float = 0.0
    compute_s: float = 0.0

    def add_piece(self, queue_s: float, inference_s: float, compute_s: float) -> None:
        # a split request waits for its slowest piece
        self.queue_s = max(self.queue_s, queue_s)
        self.inference_s = max(self.inference_s, inference_s)
        self.compute_s = max(self.compute_s, compute_s)


@dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future[dict[str, np.ndarray]]
    timing: Timing | None = None
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class _Batch:
    deadline: float
    shapes: Shapes
    tasks: list[_Task] = field(default_factory=list)
    rows: int = 0
    full: bool = False
    started: float = 0.0
    inference_s: float = 0.0
    compute_s: float = 0.0


def _rows(inputs: dict[str, np.ndarray]) -> int:
    return int(next(iter(inputs.values())).shape[0]) if inputs else 0


def _shapes(inputs: dict[str, np.ndarray]) -> Shapes:
    return tuple(tuple(int(d) for d in inputs[k].shape[1:]) for k in sorted(inputs))


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
        self._limit = config.execution_limit
        self._batches: deque[_Batch] = deque()
        self._free_threads = config.num_batch_threads

    def _pieces(self, rows: int, shapes: Shapes) -> list[int]:
        """How a task of ``rows`` is cut: first what fits the open batch, then whole execution batches."""
        if not self._config.enable_large_batch_splitting:
            return [rows]
        open_batch = self._batches[-1] if self._batches else None
        room = 0
        if open_batch is not None and not open_batch.full and open_batch.shapes == shapes:
            room = self._limit - open_batch.rows
        pieces = [min(room, rows)] if room > 0 else []
        left = rows - sum(pieces)
        while left > 0:
            pieces.append(min(self._limit, left))
            left -= pieces[-1]
        return pieces

    async def submit(self, inputs: dict[str, np.ndarray], timing: Timing | None = None) -> dict[str, np.ndarray]:
        """Run ``inputs`` as part of one or more batches; returns this task's own output rows.

        ``timing``, when given, receives where the request's time went.
        """
        rows = _rows(inputs)
        if rows > self._config.max_batch_size:
            raise invalid(f"Task size {rows} is larger than maximum input batch size {self._config.max_batch_size}")
        shapes = _shapes(inputs)
        pieces = self._pieces(rows, shapes)
        if self._new_batches(pieces, shapes) + len(self._batches) > self._config.max_enqueued_batches:
            raise ServingError(Code.UNAVAILABLE, QUEUE_FULL)
        loop = asyncio.get_running_loop()
        futures = []
        offset = 0
        for size in pieces:
            part = {k: v[offset : offset + size] for k, v in inputs.items()} if len(pieces) > 1 else inputs
            offset += size
            task = _Task(part, size, loop.create_future(), timing)
            self._enqueue(task, shapes, loop)
            futures.append(task.future)
        self._dispatch()
        if len(futures) == 1:
            return await futures[0]
        results = await asyncio.gather(*futures)
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]}

    def _fits(self, batch: _Batch | None, rows: int, shapes: Shapes) -> bool:
        return batch is not None and not batch.full and batch.shapes == shapes and batch.rows + rows <= self._limit

    def _new_batches(self, pieces: list[int], shapes: Shapes) -> int:
        batch = self._batches[-1] if self._batches else None
        return len(pieces) - (1 if self._fits(batch, pieces[0], shapes) else 0)

    def _enqueue(self, task: _Task, shapes: Shapes, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches[-1] if self._batches else None
        if not self._fits(batch, task.rows, shapes):
            if batch is not None:
                batch.full = True  # a later batch exists, so this one is closed
            batch = _Batch(deadline=time.monotonic() + self._timeout, shapes=shapes)
            self._batches.append(batch)
            if self._timeout > 0:
                loop.call_later(self._timeout, self._expire, batch)
        assert batch is not None
        batch.tasks.append(task)
        batch.rows += task.rows
        batch.full = batch.full or batch.rows >= self._limit

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
        batch.started = time.perf_counter()
        if len(batch.tasks) == 1:
            merged = batch.tasks[0].inputs
        else:
            merged = {k: np.concatenate([t.inputs[k] for t in batch.tasks]) for k in batch.tasks[0].inputs}
        called = time.perf_counter()
        try:
            return self._run(merged)
        finally:
            batch.compute_s = time.perf_counter() - called
            batch.inference_s = time.perf_counter() - batch.started

    def _finish(self, batch: _Batch, done: asyncio.Future[dict[str, np.ndarray]]) -> None:
        self._free_threads += 1
        if self._on_batch is not None:
            self._on_batch(batch.rows)
        error = done.exception()
        offset = 0
        for task in batch.tasks:
            if task.timing is not None:
                task.timing.add_piece(batch.started - task.enqueued, batch.inference_s, batch.compute_s)
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

    async def submit(self, inputs: dict[str, np.ndarray], timing: Timing | None = None) -> dict[str, np.ndarray]:
        """Run ``inputs`` alone."""
        enqueued = time.perf_counter()
        times: list[float] = []

        def run() -> dict[str, np.ndarray]:
            times.append(time.perf_counter())
            try:
                return self._run(inputs)
            finally:
                times.append(time.perf_counter())

        result = await asyncio.get_running_loop().run_in_executor(self._executor, run)
        if timing is not None:
            timing.add_piece(times[0] - enqueued, times[1] - times[0], times[1] - times[0])
        if self._on_batch is not None:
            self._on_batch(_rows(inputs))
        return result
