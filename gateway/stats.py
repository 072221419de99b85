"""Per model × backend latency statistics over a sliding window and since the last reset.

Latencies go into HdrHistograms (:mod:`contract.latency`, duoserve's one percentile
estimator: microseconds, 3 significant digits, every percentile within 0.1 % of the
true value). The sliding window is a ring of ``slots`` histograms, each covering
``window_s / slots`` seconds; a snapshot merges the live ones, so the window is between
``window_s - window_s/slots`` and ``window_s`` long.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from contract.latency import PERCENTILES, new_histogram, percentile_ms, record


def summarize(hist: HdrHistogram, seconds: float) -> dict[str, float | int | None]:
    """count, throughput and percentiles (ms) of one histogram covering ``seconds``."""
    count = int(hist.get_total_count())
    out: dict[str, float | int | None] = {
        "count": count,
        "throughput_rps": round(count / seconds, 3) if seconds > 0 else None,
    }
    for p in PERCENTILES:
        out[f"p{p:g}_ms"] = percentile_ms(hist, p)
    out["max_ms"] = hist.get_max_value() / 1000.0 if count else None
    return out


@dataclass
class _Slot:
    start: float
    hist: HdrHistogram = field(default_factory=new_histogram)


class Series:
    """Successful-call latencies and error counts of one model × backend (or one shadow pair)."""

    def __init__(self, window_s: float, slots: int, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self.slot_s = window_s / slots
        self.slots = slots
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.since = self.clock()
        self.total = new_histogram()
        self.ring: deque[_Slot] = deque()
        self.errors: Counter[str] = Counter()
        self.window_errors: deque[tuple[float, str]] = deque()

    def _slot(self, now: float) -> _Slot:
        start = now - (now - self.since) % self.slot_s
        if not self.ring or self.ring[-1].start != start:
            self.ring.append(_Slot(start))
            self._expire(now)
        return self.ring[-1]

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self.ring and self.ring[0].start < horizon:
            self.ring.popleft()
        while self.window_errors and self.window_errors[0][0] <= horizon:
            self.window_errors.popleft()

    def record(self, latency_s: float) -> None:
        record(self.total, latency_s)
        record(self._slot(self.clock()).hist, latency_s)

    def record_error(self, kind: str) -> None:
        self.errors[kind] += 1
        self.window_errors.append((self.clock(), kind))

    def snapshot(self) -> dict[str, object]:
        now = self.clock()
        self._expire(now)
        window = new_histogram()
        for slot in self.ring:
            window.add(slot.hist)
        span = min(self.window_s, now - self.since)
        window_errors = dict(Counter(kind for _, kind in self.window_errors))
        return {
            "window": {"seconds": round(span, 3), **summarize(window, span), "errors": window_errors},
            "since_reset": {**summarize(self.total, now - self.since), "errors": dict(self.errors)},
        }


class Stats:
    """All series, keyed by (model, backend); shadow comparisons keyed by (model, primary, shadow)."""

    def __init__(self, window_s: float = 60.0, slots: int = 6, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.slots = slots
        self.clock = clock
        self.series: dict[tuple[str, str], Series] = {}
        self.shadow: dict[tuple[str, str, str], Series] = {}
        self.shadow_diff: dict[tuple[str, str, str], float] = {}
        self.servers: dict[str, str] = {}
        self.reset_at = time.time()

    def _series(self, key: tuple[str, str]) -> Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(self.window_s, self.slots, self.clock)
        return series

    def record(self, model: str, backend: str, latency_s: float, server: str | None = None) -> None:
        self._series((model, backend)).record(latency_s)
        if server:
            self.servers[backend] = server

    def record_error(self, model: str, backend: str, kind: str) -> None:
        self._series((model, backend)).record_error(kind)

    def record_shadow(
        self, model: str, primary: str, shadow: str, latency_s: float | None, diff: float | None, error: str | None
    ) -> None:
        key = (model, primary, shadow)
        series = self.shadow.get(key)
        if series is None:
            series = self.shadow[key] = Series(self.window_s, self.slots, self.clock)
        if error is not None:
            series.record_error(error)
        elif latency_s is not None:
            series.record(latency_s)
        if diff is not None:
            self.shadow_diff[key] = max(self.shadow_diff.get(key, 0.0), diff)

    def reset(self) -> None:
        self.series.clear()
        self.shadow.clear()
        self.shadow_diff.clear()
        self.reset_at = time.time()

    def snapshot(self) -> dict[str, object]:
        models: dict[str, dict[str, object]] = {}
        for (model, backend), series in sorted(self.series.items()):
            entry = series.snapshot()
            entry["server"] = self.servers.get(backend)
            models.setdefault(model, {})[backend] = entry
        shadow = [
            {
                "model": model,
                "primary": primary,
                "shadow": shadow,
                "max_abs_diff": self.shadow_diff.get((model, primary, shadow)),
                **series.snapshot(),
            }
            for (model, primary, shadow), series in sorted(self.shadow.items())
        ]
        return {
            "reset_at": self.reset_at,
            "window_s": self.window_s,
            "latency_unit": "ms",
            "models": models,
            "shadow": shadow,
        }
