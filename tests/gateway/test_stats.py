"""HdrHistogram statistics: percentiles of a known distribution, the sliding window, reset."""

from __future__ import annotations

import pytest

from gateway.stats import Series, Stats


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_percentiles_of_uniform_1_to_1000_ms() -> None:
    clock = Clock()
    stats = Stats(window_s=60, clock=clock)
    for ms in range(1, 1001):
        stats.record("mlp", "torch", ms / 1000)
    clock.now += 10
    snap = stats.snapshot()["models"]["mlp"]["torch"]
    for part in ("window", "since_reset"):
        s = snap[part]
        assert s["count"] == 1000
        # HdrHistogram with 3 significant digits: within 0.1 %
        assert s["p50_ms"] == pytest.approx(500, rel=1e-3)
        assert s["p90_ms"] == pytest.approx(900, rel=1e-3)
        assert s["p95_ms"] == pytest.approx(950, rel=1e-3)
        assert s["p99_ms"] == pytest.approx(990, rel=1e-3)
        assert s["max_ms"] == pytest.approx(1000, rel=1e-3)
        assert s["throughput_rps"] == pytest.approx(100.0)
    assert snap["window"]["seconds"] == 10


def test_window_forgets_old_samples_but_since_reset_keeps_them() -> None:
    clock = Clock()
    series = Series(window_s=60, slots=6, clock=clock)
    for _ in range(10):
        series.record(0.100)
    series.record_error("timeout")
    clock.now += 61
    for _ in range(5):
        series.record(0.002)
    snap = series.snapshot()
    assert snap["window"]["count"] == 5
    assert snap["window"]["p99_ms"] == pytest.approx(2.0, rel=1e-3)
    assert snap["window"]["errors"] == {}
    assert snap["since_reset"]["count"] == 15
    assert snap["since_reset"]["max_ms"] == pytest.approx(100.0, rel=1e-3)
    assert snap["since_reset"]["errors"] == {"timeout": 1}
    clock.now += 120
    assert series.snapshot()["window"]["count"] == 0
    assert series.snapshot()["window"]["p50_ms"] is None


def test_reset_and_errors_by_class() -> None:
    stats = Stats(clock=Clock())
    stats.record("mlp", "tf", 0.001, "duoserve-compat")
    stats.record_error("mlp", "tf", "timeout")
    stats.record_error("mlp", "tf", "timeout")
    stats.record_error("mlp", "tf", "unavailable")
    snap = stats.snapshot()["models"]["mlp"]["tf"]
    assert snap["since_reset"]["errors"] == {"timeout": 2, "unavailable": 1}
    assert snap["window"]["errors"] == {"timeout": 2, "unavailable": 1}
    assert snap["server"] == "duoserve-compat"
    stats.reset()
    assert stats.snapshot()["models"] == {}


def test_merged_dumps_equal_one_process_that_saw_everything() -> None:
    clock = Clock()
    whole = Stats(window_s=60, clock=clock)
    parts = [Stats(window_s=60, clock=clock), Stats(window_s=60, clock=clock)]
    for i, ms in enumerate(range(1, 1001)):
        for stats in (whole, parts[i % 2]):
            stats.record("mlp", "torch", ms / 1000, "torchserve")
        if i % 100 == 0:
            for stats in (whole, parts[i % 2]):
                stats.record_error("mlp", "tf", "timeout")
                stats.count("mlp", "retries")
        if i == 500:
            clock.now += 25  # the records span several window slots
    clock.now += 5
    merged = Stats.merged([p.dump() for p in parts], window_s=60, clock=clock)
    got, want = merged.snapshot(), whole.snapshot()
    assert got["models"] == want["models"]
    assert (
        got["events"]
        == want["events"]
        == {
            "mlp": {
                "retries": 10,
                "retries_denied": 0,
                "hedges": 0,
                "hedges_won": 0,
                "hedges_denied": 0,
                "cancelled": 0,
            }
        }
    )
    assert got["models"]["mlp"]["torch"]["since_reset"]["count"] == 1000
    assert got["models"]["mlp"]["tf"]["window"]["errors"] == {"timeout": 10}
