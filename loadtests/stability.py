"""The stability rule: a figure is a sequence of windows, stable when the last three agree.

perf_analyzer's rule (``inference_profiler.cc``: ``IsInferWindowStable`` and
``IsLatencyWindowStable``): measure windows one after another until the last
``window_count`` (3) agree within ``tolerance`` (±10 %) on throughput *and* latency, where
agreeing means ``max / min <= 1 + tolerance`` over those windows; the figure is then the
last three windows merged (their requests pooled, percentiles over all their latencies).
If ``max_windows`` pass without that, the figure is still reported, merged from the last
three windows, and marked *unstable*.

A percentile needs samples: a q-th percentile is reported only from at least
:data:`MIN_SAMPLES` latencies (one above it at the least, ``n ≥ 1 / (1 − q)``, and never
fewer than 20), so a p99 needs 100 and a p50 20. The engine keeps each window open until it
holds :data:`WINDOW_MIN_REQUESTS` (the last three then hold a p99), up to a bound on time;
a figure that still has fewer is reported as what it is, the max of its ``n`` latencies,
with ``n`` beside it (``short``), and its windows are compared on the highest percentile
every one of them holds (p99, else p50, else they cannot agree).

Nothing here measures: :class:`Window` is what one window saw, so the tests drive the rule
with synthetic windows. Latencies are kept as milliseconds and turned into percentiles by
:mod:`contract.latency` (HdrHistogram), the one estimator of every published figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract.latency import histogram_of, percentile_ms

#: Windows that must agree, and by how much (perf_analyzer's defaults: 3 and 10 %).
WINDOW_COUNT = 3
TOLERANCE = 0.10
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
#: Fewest latencies behind each reported percentile: at least one above it (``1 / (1 − q)``), never fewer than 20.
MIN_SAMPLES = {k: max(20, round(1 / (1 - q / 100))) for k, q in PERCENTILES.items()}
#: Requests each window is kept open for, so that the last :data:`WINDOW_COUNT` merged hold a p99.
WINDOW_MIN_REQUESTS = -(-MIN_SAMPLES["p99"] // WINDOW_COUNT)


def short_of(n: int, key: str) -> int | None:
    """``n`` when ``n`` latencies are too few for percentile ``key`` (its figure is then their max), else None."""
    return n if 0 < n < MIN_SAMPLES[key] else None


def percentile_of(latencies_ms: list[float], key: str) -> tuple[float | None, int | None]:
    """``(value, short)`` of percentile ``key`` (``p50`` ... ``p99``): the percentile, or, from fewer than
    :data:`MIN_SAMPLES` latencies, their max with ``short`` = how many there were (None when enough)."""
    if not latencies_ms:
        return None, None
    if short := short_of(len(latencies_ms), key):
        return max(latencies_ms), short
    return percentile_ms(histogram_of(x / 1000 for x in latencies_ms), PERCENTILES[key]), None


@dataclass
class Window:
    """One measured window: every request that finished in it, with its latency in ms."""

    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    #: other per-request figures of the window (ms): Server-Timing parts, lateness of the arrivals
    timings: dict[str, list[float]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def p99_ms(self) -> float | None:
        """The window's p99, or None when it holds fewer than :data:`MIN_SAMPLES` ``["p99"]`` latencies."""
        value, short = percentile_of(self.latencies_ms, "p99")
        return None if short else value

    @property
    def p50_ms(self) -> float | None:
        """The window's p50, or None when it holds fewer than :data:`MIN_SAMPLES` ``["p50"]`` latencies."""
        value, short = percentile_of(self.latencies_ms, "p50")
        return None if short else value


def latency_key(windows: list[Window]) -> str | None:
    """The highest percentile every one of ``windows`` holds enough latencies for (``p99``, ``p50``), or None."""
    for key in ("p99", "p50"):
        if windows and all(w.requests >= MIN_SAMPLES[key] for w in windows):
            return key
    return None


def _latency(window: Window, key: str | None) -> float | None:
    return window.p99_ms if key == "p99" else window.p50_ms if key == "p50" else None


def _agree(values: list[float | None], tolerance: float) -> bool:
    if any(v is None or v <= 0 for v in values):
        return False
    known = [v for v in values if v is not None]
    return max(known) / min(known) <= 1 + tolerance


def is_stable(windows: list[Window], count: int = WINDOW_COUNT, tolerance: float = TOLERANCE) -> bool:
    """The last ``count`` windows agree within ``tolerance`` on throughput and on p99 (p50 where a window holds
    too few latencies for a p99; none agree when one holds too few for a p50)."""
    if len(windows) < count:
        return False
    last = windows[-count:]
    key = latency_key(last)
    return _agree([w.rps for w in last], tolerance) and _agree([_latency(w, key) for w in last], tolerance)


def spread_of(values: list[float | None]) -> float | None:
    """``max / min - 1`` of the known values (the rule's own measure of disagreement), or None."""
    known = [v for v in values if v is not None and v > 0]
    return max(known) / min(known) - 1 if len(known) == len(values) and known else None


@dataclass
class Figure:
    """A measurement: the last ``count`` windows merged, with the windows and the verdict of the rule."""

    windows: list[Window]
    stable: bool
    count: int = WINDOW_COUNT
    tolerance: float = TOLERANCE

    @property
    def used(self) -> list[Window]:
        return self.windows[-self.count :]

    @property
    def seconds(self) -> float:
        return sum(w.seconds for w in self.used)

    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.used)

    @property
    def failures(self) -> int:
        return sum(w.failures for w in self.used)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def latencies_ms(self) -> list[float]:
        return [x for w in self.used for x in w.latencies_ms]

    def timing_means(self) -> dict[str, float | None]:
        """Mean of each per-request timing over the merged windows (None when none was seen)."""
        pooled: dict[str, list[float]] = {}
        for window in self.used:
            for name, values in window.timings.items():
                pooled.setdefault(name, []).extend(values)
        return {name: (sum(v) / len(v) if v else None) for name, v in pooled.items()}

    def short(self) -> dict[str, int]:
        """Each percentile the merged windows hold too few latencies for -> how many they hold (its figure is
        then their max)."""
        return {k: self.requests for k in MIN_SAMPLES if short_of(self.requests, k)}

    def percentiles(self) -> dict[str, float | None]:
        """p50/p90/p95/p99, max and mean (ms) over the merged windows, from one HdrHistogram; a percentile
        with too few latencies behind it is their max (:meth:`short` says which)."""
        latencies = self.latencies_ms
        hist = histogram_of(x / 1000 for x in latencies)
        found: dict[str, float | None] = {k: percentile_of(latencies, k)[0] for k in PERCENTILES}
        empty = hist.get_total_count() == 0
        found["max"] = None if empty else float(hist.get_max_value()) / 1000.0
        found["mean"] = None if empty else float(hist.get_mean_value()) / 1000.0
        return found

    def to_json(self) -> dict[str, Any]:
        """The figure and, per window, its throughput and p99 (the evidence for the verdict)."""
        return {
            "stable": self.stable,
            "windows": len(self.windows),
            "window_s": round(self.windows[-1].seconds, 3) if self.windows else None,
            "rule": (
                f"last {self.count} windows within ±{self.tolerance:.0%} on req/s and p99 (p50 where a window holds "
                f"fewer than {MIN_SAMPLES['p99']} requests)"
            ),
            "rps_spread": spread_of([w.rps for w in self.used]),
            "latency_key": latency_key(self.used),
            "latency_spread": spread_of([_latency(w, latency_key(self.used)) for w in self.used]),
            "short": self.short(),
            "per_window": [
                {
                    "rps": round(w.rps, 2),
                    "p50_ms": w.p50_ms,
                    "p99_ms": w.p99_ms,
                    "requests": w.requests,
                    "failures": w.failures,
                }
                for w in self.windows
            ],
            "timing_means_ms": self.timing_means(),
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "failures": self.failures,
            "rps": round(self.rps, 3),
            **{f"{k}_ms": v for k, v in self.percentiles().items()},
        }


def measure(
    take: Any, *, min_windows: int = WINDOW_COUNT, max_windows: int = 6, tolerance: float = TOLERANCE
) -> Figure:
    """Call ``take()`` (one :class:`Window`) until the rule holds or ``max_windows`` were taken."""
    if max_windows < min_windows or min_windows < WINDOW_COUNT:
        raise ValueError(f"need {WINDOW_COUNT} <= min_windows <= max_windows (got {min_windows}, {max_windows})")
    windows: list[Window] = []
    while len(windows) < max_windows:
        windows.append(take())
        if len(windows) >= min_windows and is_stable(windows, WINDOW_COUNT, tolerance):
            return Figure(windows, True, WINDOW_COUNT, tolerance)
    return Figure(windows, False, WINDOW_COUNT, tolerance)
