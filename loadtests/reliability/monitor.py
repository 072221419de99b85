"""Watch the gateway while a load runs: its memory and open files (psutil), and each backend's circuit."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import httpx
import psutil  # type: ignore[import-untyped]


@dataclass(frozen=True)
class ProcessSample:
    t: float  # time.perf_counter()
    rss_bytes: int
    fds: int


@dataclass
class Watch:
    """Polls ``pid`` (RSS and fds, every ``interval_s``) and ``gateway``'s ``/v1/models`` circuits in a thread."""

    pid: int
    gateway: str
    interval_s: float = 0.25
    process: list[ProcessSample] = field(default_factory=list)
    #: (time.perf_counter(), backend, circuit state) at every change
    circuits: list[tuple[float, str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reliability-watch", daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        proc = psutil.Process(self.pid)
        last: dict[str, str] = {}
        with httpx.Client(timeout=2.0, headers=self.headers) as client:
            while not self._stop.is_set():
                now = time.perf_counter()
                with contextlib.suppress(psutil.Error):
                    self.process.append(ProcessSample(now, proc.memory_info().rss, proc.num_fds()))
                try:
                    backends = client.get(f"{self.gateway}/v1/models").json()["backends"]
                except (httpx.HTTPError, ValueError, KeyError):
                    backends = {}
                # stamped when the answer came: /v1/models checks each backend's readiness, which takes up
                # to its timeout against a blackholed backend, and the state is the one at answer time
                seen = time.perf_counter()
                for name, info in backends.items():
                    if last.get(name) != info.get("circuit"):
                        last[name] = str(info.get("circuit"))
                        self.circuits.append((seen, name, last[name]))
                self._stop.wait(self.interval_s)

    def first_change(self, backend: str, state: str, after: float) -> float | None:
        """``time.perf_counter()`` when ``backend``'s circuit first showed ``state`` at or after ``after``."""
        return next((t for t, b, s in self.circuits if b == backend and s == state and t >= after), None)

    def rss_growth(self, start: float = -math.inf, end: float = math.inf) -> float:
        """RSS at the end over RSS at ``start`` (both the nearest samples), minus 1; 0 with fewer than two samples."""
        inside = [p for p in self.process if start <= p.t <= end]
        if len(inside) < 2:
            return 0.0
        return inside[-1].rss_bytes / inside[0].rss_bytes - 1

    def rss_start(self) -> int:
        return self.process[0].rss_bytes if self.process else 0

    def peak_rss(self) -> int:
        return max((p.rss_bytes for p in self.process), default=0)

    def fds(self, start: float = -math.inf, end: float = math.inf) -> tuple[int, int]:
        """(fds at ``start``, max fds up to ``end``)."""
        inside = [p for p in self.process if start <= p.t <= end]
        return (inside[0].fds, max(p.fds for p in inside)) if inside else (0, 0)
