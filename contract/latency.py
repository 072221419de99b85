"""The one percentile estimator behind every latency figure duoserve publishes: HdrHistogram.

Values are recorded in microseconds, 1 µs to one hour, with 3 significant digits, so
every percentile is within 0.1 % of the exact one and histograms merge exactly (the
gateway's sliding window, several gateway workers, repeated benchmark windows). The
gateway's stats, the load tests, the reliability runs and the benchmarks all take their
percentiles from here (wrk, a native tool, uses HdrHistogram itself).
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def new_histogram() -> HdrHistogram:
    """An empty histogram with duoserve's range and precision."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def record(hist: HdrHistogram, seconds: float) -> None:
    """Record one latency given in seconds (clamped into the histogram's range)."""
    hist.record_value(max(LOWEST_US, min(HIGHEST_US, round(seconds * 1e6))))


def histogram_of(seconds: Iterable[float]) -> HdrHistogram:
    """A histogram of latencies given in seconds."""
    hist = new_histogram()
    for value in seconds:
        record(hist, value)
    return hist


def percentile_ms(hist: HdrHistogram, q: float) -> float | None:
    """The ``q`` percentile (0-100) in milliseconds, or None when nothing was recorded."""
    if hist.get_total_count() == 0:
        return None
    return float(hist.get_value_at_percentile(q)) / 1000.0


def percentiles_ms(seconds: Iterable[float], qs: Iterable[float] = PERCENTILES) -> dict[str, float | None]:
    """``{"p50_ms": ..., "p99_ms": ...}`` of latencies given in seconds."""
    hist = histogram_of(seconds)
    return {f"p{q:g}_ms": percentile_ms(hist, q) for q in qs}
