"""A bounded open-loop load on one URL, and the figures the reliability table needs from it.

Requests arrive at a fixed rate (open loop, so a slow server does not slow the offered load)
with at most ``concurrency`` in flight; an arrival that finds every slot busy is not sent
and counts as ``client_full`` (the load generator's own limit, reported apart from the
server's failures). Every run stops by itself: after ``duration_s`` and at most
``rate * duration_s`` requests. Everything goes to loopback.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from contract import latency

OK = 200
#: status of a request whose connection failed (refused, reset, timed out) before any answer
NO_ANSWER = 0
#: status of an arrival the load generator did not send because all its slots were busy
CLIENT_FULL = -1


@dataclass(frozen=True)
class Sample:
    """One request: when it started (seconds since the run began), how long it took, what came back."""

    start: float
    latency_s: float
    status: int
    backend: str = ""
    retry_after: str | None = None
    error: str = ""


@dataclass
class Phase:
    """A named stretch of offered load: ``rate`` req/s for ``duration_s``; ``on_start`` runs as it begins."""

    name: str
    duration_s: float
    rate: float
    on_start: Callable[[], None] | None = None


@dataclass
class Run:
    """A finished run: every sample, and when each phase began (seconds since the start)."""

    samples: list[Sample] = field(default_factory=list)
    #: ``time.perf_counter()`` at the start; sample and phase times are relative to it
    t0: float = 0.0
    phase_starts: dict[str, float] = field(default_factory=dict)
    phase_ends: dict[str, float] = field(default_factory=dict)
    #: when each phase's ``on_start`` action finished (it runs in a thread beside the load)
    actions_done: dict[str, float] = field(default_factory=dict)

    def window(self, phase: str) -> tuple[float, float]:
        return self.phase_starts[phase], self.phase_ends[phase]


def _loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"reliability load goes to loopback only, not {host}")


async def drive(
    url: str,
    body: bytes,
    phases: Sequence[Phase],
    *,
    concurrency: int = 64,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
    fresh_connections: bool = False,
) -> Run:
    """Offer ``phases`` one after the other to ``POST url``; return every sample."""
    _loopback(url)
    run = Run()
    slots = asyncio.Semaphore(concurrency)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=fresh_connections)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    tasks: set[asyncio.Task[None]] = set()
    t0 = run.t0 = time.perf_counter()

    async def one(session: aiohttp.ClientSession) -> None:
        start = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=all_headers) as response:
                await response.read()
                sample = Sample(
                    start - t0,
                    time.perf_counter() - start,
                    response.status,
                    response.headers.get("X-Backend", ""),
                    response.headers.get("Retry-After"),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            sample = Sample(start - t0, time.perf_counter() - start, NO_ANSWER, error=type(exc).__name__)
        finally:
            slots.release()
        run.samples.append(sample)

    actions: list[asyncio.Future[None]] = []

    def act(name: str, action: Callable[[], None]) -> None:
        try:
            action()
        finally:
            run.actions_done[name] = time.perf_counter() - t0

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for phase in phases:
            begin = time.perf_counter()
            run.phase_starts[phase.name] = begin - t0
            if phase.on_start is not None:  # beside the load: a slow action must not pause the arrivals
                actions.append(asyncio.get_running_loop().run_in_executor(None, act, phase.name, phase.on_start))
            total = max(0, math.floor(phase.rate * phase.duration_s))
            interval = 1.0 / phase.rate if phase.rate > 0 else phase.duration_s
            for i in range(total):
                due = begin + i * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if slots.locked():
                    run.samples.append(Sample(time.perf_counter() - t0, 0.0, CLIENT_FULL))
                    continue
                await slots.acquire()
                task = asyncio.create_task(one(session))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            rest = begin + phase.duration_s - time.perf_counter()
            if rest > 0:
                await asyncio.sleep(rest)
            run.phase_ends[phase.name] = time.perf_counter() - t0
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s + 1)
    if actions:
        await asyncio.gather(*actions)
    run.samples.sort(key=lambda s: s.start)
    return run


# -- figures ------------------------------------------------------------------------------


def between(samples: Sequence[Sample], start: float, end: float) -> list[Sample]:
    """The samples sent in ``[start, end)`` (arrivals the client did not send excluded)."""
    return [s for s in samples if start <= s.start < end and s.status != CLIENT_FULL]


def failed_ratio(samples: Sequence[Sample]) -> float:
    """Share of sent requests that did not answer 200."""
    return sum(s.status != OK for s in samples) / len(samples) if samples else 0.0


def percentile_ms(samples: Sequence[Sample], q: float) -> float:
    """The ``q`` percentile (0-100) of the latency of every sent request, in ms (duoserve's one estimator)."""
    found = latency.percentile_ms(latency.histogram_of(s.latency_s for s in samples), q)
    return math.nan if found is None else found


def throughput(samples: Sequence[Sample], start: float, end: float, status: int = OK) -> float:
    """Answers with ``status`` per second among requests sent in ``[start, end)``."""
    return sum(s.status == status for s in between(samples, start, end)) / (end - start) if end > start else 0.0


def steady_after(
    samples: Sequence[Sample],
    start: float,
    end: float,
    *,
    p99_ms: float,
    backend: str | None = None,
    bucket_s: float = 0.5,
) -> float | None:
    """Seconds from ``start`` until steady state: from then on every ``bucket_s`` bucket up to ``end`` has no failure,
    a p99 at most ``p99_ms``, and (if given) every answer from ``backend``. ``None``: never steady.
    """
    buckets = max(1, math.floor((end - start) / bucket_s))
    good = [False] * buckets
    for i in range(buckets):
        chunk = between(samples, start + i * bucket_s, start + (i + 1) * bucket_s)
        good[i] = (
            bool(chunk)
            and failed_ratio(chunk) == 0
            and percentile_ms(chunk, 99) <= p99_ms
            and (backend is None or all(s.backend == backend for s in chunk))
        )
    first = buckets
    while first > 0 and good[first - 1]:
        first -= 1
    return None if first == buckets else first * bucket_s
