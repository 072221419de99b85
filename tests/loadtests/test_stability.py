"""The stability rule on synthetic windows: perf_analyzer's last-3-within-10 % on req/s and p99."""

from __future__ import annotations

import pytest

from loadtests.stability import Window, is_stable, measure, spread_of


def window(rps: float, p99: float, seconds: float = 1.0) -> Window:
    """A window of ``rps`` requests in ``seconds`` whose p99 is ``p99`` ms (the rest at 1 ms)."""
    n = round(rps * seconds)
    tail = max(2, -(-n // 50))  # 2 % of requests at p99: HdrHistogram's p99 lands on them
    return Window(seconds, [1.0] * (n - tail) + [p99] * tail)


def test_three_agreeing_windows_are_stable() -> None:
    assert is_stable([window(100, 20), window(105, 21), window(108, 21.5)])


def test_fewer_than_three_windows_are_never_stable() -> None:
    assert not is_stable([window(100, 20), window(100, 20)])


@pytest.mark.parametrize(
    ("rps", "p99"),
    [((100, 100, 111), (20, 20, 20)), ((100, 100, 100), (20, 20, 22.3))],
)
def test_more_than_ten_percent_apart_on_either_figure_is_unstable(
    rps: tuple[float, ...], p99: tuple[float, ...]
) -> None:
    assert not is_stable([window(r, p) for r, p in zip(rps, p99, strict=True)])


def test_only_the_last_three_count() -> None:
    assert is_stable([window(10, 90), window(100, 20), window(101, 20), window(99, 20.5)])


def test_an_empty_window_is_unstable() -> None:
    assert not is_stable([Window(1.0, []), Window(1.0, []), Window(1.0, [])])


def test_measure_stops_when_stable_and_merges_the_last_three() -> None:
    feed = iter([window(50, 80), window(100, 20), window(100, 20), window(100, 20), window(100, 20)])
    figure = measure(lambda: next(feed), min_windows=3, max_windows=5)
    assert figure.stable
    assert len(figure.windows) == 4
    assert figure.requests == 300
    assert figure.rps == pytest.approx(100.0)
    data = figure.to_json()
    assert data["stable"] is True
    assert data["requests"] == 300
    assert data["p99_ms"] == pytest.approx(20.0, rel=1e-3)
    assert data["p50_ms"] == pytest.approx(1.0, rel=1e-3)
    assert len(data["per_window"]) == 4


def test_measure_gives_up_at_max_windows_and_marks_unstable() -> None:
    rates = iter([100, 150, 100, 150, 100, 150])
    figure = measure(lambda: window(next(rates), 20), min_windows=3, max_windows=5)
    assert not figure.stable
    assert len(figure.windows) == 5
    assert figure.requests == 100 + 150 + 100  # the last three, merged
    assert figure.to_json()["rps_spread"] == pytest.approx(0.5)


def test_measure_refuses_fewer_than_three_windows() -> None:
    with pytest.raises(ValueError, match="min_windows"):
        measure(lambda: window(1, 1), min_windows=2, max_windows=5)


def test_spread_and_timing_means() -> None:
    assert spread_of([100.0, 110.0, 105.0]) == pytest.approx(0.1)
    assert spread_of([100.0, None]) is None
    w = [Window(1.0, [1.0], timings={"gateway": [0.2, 0.4]}) for _ in range(3)]
    figure = measure(iter(w).__next__, min_windows=3, max_windows=3)
    assert figure.timing_means() == {"gateway": pytest.approx(0.3)}


def test_the_samples_each_percentile_needs() -> None:
    from loadtests.stability import MIN_SAMPLES, WINDOW_MIN_REQUESTS

    assert MIN_SAMPLES == {"p50": 20, "p90": 20, "p95": 20, "p99": 100}
    assert WINDOW_MIN_REQUESTS == 34  # three windows merged hold a p99


def test_a_figure_from_too_few_latencies_is_their_max_with_n_beside_it() -> None:
    # issue 22: a 3 s probe at 6.25 req/s held 14 latencies; its "p99" was their largest
    latencies = [20.0 + i for i in range(13)] + [165.0]
    figure = measure(iter([Window(1.0, latencies[i::3]) for i in range(3)]).__next__, min_windows=3, max_windows=3)
    data = figure.to_json()
    assert data["short"] == {"p50": 14, "p90": 14, "p95": 14, "p99": 14}
    assert data["p99_ms"] == data["p50_ms"] == 165.0
    # 60 latencies hold a p50 and a p95 but not a p99
    figure = measure(iter([window(20, 50.0) for _ in range(3)]).__next__, min_windows=3, max_windows=3)
    data = figure.to_json()
    assert data["short"] == {"p99": 60}
    assert data["p99_ms"] == 50.0
    assert data["p50_ms"] == pytest.approx(1.0, rel=1e-3)


def test_windows_too_small_for_a_p99_are_compared_on_their_p50() -> None:
    # 40 requests a window: each window's "p99" would be its max, which a single slow request decides
    a, b, c = (Window(1.0, [10.0] * 39 + [tail]) for tail in (20.0, 60.0, 35.0))
    assert a.p99_ms is None
    assert a.p50_ms == pytest.approx(10.0, rel=1e-3)
    assert is_stable([a, b, c])
    figure = measure(iter([a, b, c]).__next__, min_windows=3, max_windows=3)
    assert figure.to_json()["latency_key"] == "p50"
    # fewer than 20 a window: not even a p50 to compare; such windows never agree
    assert not is_stable([Window(1.0, [10.0] * 10) for _ in range(3)])
