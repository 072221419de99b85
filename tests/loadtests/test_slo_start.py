"""Where the SLO search starts and when it stops: the unloaded latency, the floor, the budget."""

from __future__ import annotations

import pytest

from loadtests.slo import Criteria, Plan, Probe, TargetResult, run_all, search
from tests.loadtests.test_slo import knee, synthetic


def test_the_start_comes_from_the_unloaded_latency() -> None:
    from loadtests.slo import start_rate_for

    # 5 ms alone, bound 50 ms: at most ~200 req/s per worker, and a queue may add 45 ms
    assert start_rate_for(5.0, 50.0) == (pytest.approx(180.0), pytest.approx(50.0))
    # issue 22's InceptionV3 on TF: ~25 ms alone leaves half the bound to a queue
    assert start_rate_for(25.0, 50.0) == (pytest.approx(20.0), pytest.approx(10.0))
    # slower alone than the bound: probed at the floor, a quarter of its unloaded throughput
    assert start_rate_for(100.0, 50.0) == (pytest.approx(2.5), pytest.approx(2.5))
    assert start_rate_for(None, 50.0) == (25.0, 1.0)


def unloaded_of(p50_ms: float):
    def unloaded(target: str) -> Probe:
        return Probe(1000 / p50_ms, 1000 / p50_ms, p50_ms * 1.2, 0.0, 30, 3.0, p50_ms=p50_ms, label="unloaded")

    return unloaded


def test_run_all_starts_each_search_from_its_unloaded_latency() -> None:
    measure, calls = synthetic()
    results, _ = run_all(["t"], measure, Criteria(50.0), Plan(rel_tol=0.1), seed=0, unloaded=unloaded_of(5.0))
    assert calls[0][1] == pytest.approx(180.0)
    data = results["t"].to_json()
    assert data["unloaded"]["p50_ms"] == 5.0
    assert data["start_rate"] == pytest.approx(180.0)
    assert data["confirmed_rounds"] == 3
    assert knee(50.0) * 0.9 <= data["best_rate"] <= knee(50.0)
    with pytest.raises(ValueError, match="unloaded latency"):
        run_all(["t"], measure, Criteria(50.0), Plan(), seed=0)
    # a profile's own start rate wins; the unloaded latency is still measured and recorded
    measure, calls = synthetic()
    results, _ = run_all(["t"], measure, Criteria(50.0), Plan(start_rate=40.0), seed=0, unloaded=unloaded_of(5.0))
    assert calls[0][1] == 40.0
    assert results["t"].to_json()["unloaded"]["p50_ms"] == 5.0


def test_a_target_slower_alone_than_the_bound_is_probed_once_at_its_floor() -> None:
    calls: list[float] = []

    def measure(target: str, rate: float, label: str, round_no: int) -> Probe:
        calls.append(rate)
        return Probe(rate, rate, 160.0, 0.0, 22, 9.0, p50_ms=104.0, round=round_no, p99_of=22)

    results, _ = run_all(["torch"], measure, Criteria(50.0), Plan(), seed=0, unloaded=unloaded_of(100.0))
    assert calls == [pytest.approx(2.5)]  # the median is over the bound: no retry, nothing lower to try
    data = results["torch"].to_json()
    assert data["confirmed_rounds"] == 0
    assert data["best_rate"] is None
    assert data["probes"][0]["verdict"] == "max of 22: 160 ms > 50 ms"


def test_the_search_stops_taking_probes_when_its_budget_is_spent() -> None:
    measure, calls = synthetic()

    def slow(target: str, rate: float, label: str, round_no: int) -> Probe:
        found = measure(target, rate, label, round_no)
        return Probe(found.rate, found.achieved_rps, found.p99_ms, 0.0, found.requests, 9.0, p50_ms=found.p50_ms,
                     elapsed_s=10.0)  # fmt: skip

    result = TargetResult("t", 50.0)
    search(result, slow, Criteria(50.0), Plan(start_rate=25.0, max_probes=10, search_budget_s=25.0))
    assert [c[1] for c in calls] == [25.0, 50.0, 100.0]
    assert result.budget_spent
    assert result.best_rate == 100.0
    assert result.to_json()["search_s"] == 30.0
