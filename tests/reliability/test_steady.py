"""The reliability table's "back to steady": the last stretch of clean buckets after a fault."""

from __future__ import annotations

from loadtests.reliability.load import Sample, steady_after


def _second(start: float, *, status: int = 200, backend: str = "torch", latency_s: float = 0.005) -> list[Sample]:
    """Ten requests within the second from ``start``."""
    return [Sample(start + i / 10, latency_s, status, backend) for i in range(10)]


def test_steady_from_the_first_clean_bucket_that_stays_clean() -> None:
    samples = _second(0.0, status=503) + _second(1.0) + _second(2.0, status=504) + _second(3.0) + _second(4.0)
    assert steady_after(samples, 0.0, 5.0, p99_ms=50, backend="torch") == 3.0


def test_a_slow_bucket_is_not_steady() -> None:
    samples = _second(0.0, latency_s=0.2) + _second(1.0)
    assert steady_after(samples, 0.0, 2.0, p99_ms=50) == 1.0
    assert steady_after(_second(0.0) + _second(1.0, latency_s=0.2), 0.0, 2.0, p99_ms=50) is None


def test_answers_from_another_backend_count_only_when_no_backend_is_asked_for() -> None:
    # a hedged run: tf answers some requests even while torch is healthy
    samples = _second(0.0) + _second(1.0, backend="tf") + _second(2.0)
    assert steady_after(samples, 0.0, 3.0, p99_ms=50, backend="torch") == 2.0
    assert steady_after(samples, 0.0, 3.0, p99_ms=50, backend=None) == 0.0
