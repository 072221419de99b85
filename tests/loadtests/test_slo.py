"""The SLO search on a synthetic server: p99(rate) = base / (1 - rate / capacity), open loop."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loadtests.slo import Criteria, Plan, Probe, TargetResult, run_all, search

BASE_MS = 5.0
CAPACITY = 1000.0


def synthetic(capacity: float = CAPACITY, generator_limit: float = math.inf, error_above: float = math.inf):
    calls: list[tuple[str, float, str, int]] = []

    def measure(target: str, rate: float, label: str, round_no: int) -> Probe:
        calls.append((target, rate, label, round_no))
        sent = min(rate, generator_limit)
        if rate >= capacity:
            return Probe(rate, capacity, 10_000.0, 0.0, int(capacity), 10.0, p50_ms=5000.0, round=round_no)
        p99 = BASE_MS / (1 - sent / capacity)
        errors = 0.05 if rate > error_above else 0.0
        return Probe(rate, sent, p99, errors, int(sent * 10), 10.0, p50_ms=p99 / 2, round=round_no)

    return measure, calls


def knee(slo_ms: float, capacity: float = CAPACITY) -> float:
    return capacity * (1 - BASE_MS / slo_ms)


@pytest.mark.parametrize("slo_ms", [10.0, 50.0, 200.0])
def test_brackets_from_below_by_doubling_then_bisects(slo_ms: float) -> None:
    measure, calls = synthetic()
    result = TargetResult("t", slo_ms)
    search(result, measure, Criteria(slo_ms), Plan(start_rate=25.0, rel_tol=0.02, max_probes=20))
    rates = [c[1] for c in calls]
    # doubling from the start until the first failure, never capped by anything else
    first_fail = next(i for i, (o, _) in enumerate(result.outcomes) if o == "fail")
    assert rates[: first_fail + 1] == [25.0 * 2**i for i in range(first_fail + 1)]
    assert rates[first_fail] > knee(slo_ms)
    assert result.best_rate is not None
    assert knee(slo_ms) * 0.97 <= result.best_rate <= knee(slo_ms)
    assert result.ceiling is not None
    assert (result.ceiling - result.best_rate) / result.ceiling <= 0.02


def test_a_start_above_the_knee_halves_until_a_probe_passes() -> None:
    measure, calls = synthetic()
    result = TargetResult("t", 50.0)
    search(result, measure, Criteria(50.0), Plan(start_rate=4000.0, rel_tol=0.1, max_probes=12))
    # a failure of the median (p50 over the bound) counts at once; a failure of the tail alone is measured
    # twice before it counts (937.5: p99 80 ms, p50 40 ms)
    assert [c[1] for c in calls][:8] == [4000.0, 2000.0, 1000.0, 500.0, 750.0, 875.0, 937.5, 937.5]
    assert result.best_rate is not None
    assert knee(50.0) * 0.9 <= result.best_rate <= knee(50.0)


def test_probes_are_bounded() -> None:
    measure, calls = synthetic()
    search(TargetResult("t", 50.0), measure, Criteria(50.0), Plan(start_rate=1.0, max_probes=4))
    assert len(calls) == 4


def test_the_error_bound_fails_a_probe() -> None:
    measure, _ = synthetic(error_above=600.0)
    result = TargetResult("t", 50.0)
    search(result, measure, Criteria(50.0, max_fail_ratio=0.01), Plan(start_rate=100.0, rel_tol=0.02, max_probes=20))
    assert result.best_rate is not None
    assert 600.0 * 0.97 <= result.best_rate <= 600.0
    assert any("errors" in why for _, why in result.outcomes)


def test_a_generator_that_cannot_offer_the_rate_voids_the_probe_and_stops_the_search() -> None:
    measure, calls = synthetic(generator_limit=300.0)
    result = TargetResult("t", 50.0)
    search(result, measure, Criteria(50.0), Plan(start_rate=100.0, max_probes=10))
    assert [o for o, _ in result.outcomes] == ["pass", "pass", "void"]
    assert "load generator achieved 300.0 req/s of 400.0 offered" in result.outcomes[-1][1]
    assert result.generator_bound
    assert result.best_rate == 200.0
    assert len(calls) == 3


def test_a_saturated_generator_voids_the_probe() -> None:
    probe = Probe(100.0, 100.0, 10.0, 0.0, 1000, 10.0, loadgen_cpu_percent=97.0)
    outcome, why = Criteria(50.0, saturated_cpu_percent=90.0).judge(probe)
    assert outcome == "void"
    assert why.startswith("load generator saturated (97 %")


def test_poisson_noise_on_a_short_probe_is_not_a_shortfall() -> None:
    assert Criteria(50.0).judge(Probe(100.0, 88.0, 10.0, 0.0, 88, 1.0))[0] == "pass"
    assert Criteria(50.0).judge(Probe(100.0, 88.0, 90.0, 0.0, 88, 1.0)) == ("fail", "p99 90 ms > 50 ms")


def test_run_all_confirms_every_target_three_times_in_seeded_shuffled_orders() -> None:
    measure, calls = synthetic()
    targets = ["a", "b", "c", "d"]
    plan = Plan(start_rate=50.0, rel_tol=0.1, max_probes=10, confirmations=3)
    results, orders = run_all(targets, measure, Criteria(50.0), plan, seed=11)
    _again, orders_again = run_all(targets, synthetic()[0], Criteria(50.0), plan, seed=11)
    assert orders == orders_again  # the seed decides the orders
    assert len(orders) == 4
    assert all(sorted(o) == targets for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # shuffled, not fixed
    # the rounds' probes run in that round's order
    for round_no, order in enumerate(orders[1:], start=1):
        assert [c[0] for c in calls if c[3] == round_no] == order
    for result in results.values():
        data = result.to_json()
        assert data["confirmed_rounds"] == 3
        assert data["capacity"]["median"] is not None
        assert data["capacity"]["low"] <= data["capacity"]["median"] <= data["capacity"]["high"]
        assert data["bracket"]["low"] <= data["bracket"]["high"] <= knee(50.0) * 1.001
        assert data["bracket"]["high"] >= knee(50.0) * 0.9
        assert data["low_load"]["rate"] == 50.0


def test_a_failed_confirmation_steps_down() -> None:
    def measure(target: str, rate: float, label: str, round_no: int) -> Probe:
        limit = 450.0 if round_no else 500.0  # short search probes hold 500, confirmations only 450
        return Probe(rate, rate, 10.0 if rate <= limit else 90.0, 0.0, 100, 10.0, round=round_no)

    results, _ = run_all(["t"], measure, Criteria(50.0), Plan(start_rate=500.0, rel_tol=0.1, max_probes=1), seed=0)
    confirmed = results["t"].confirmed
    assert [c["rate"] for c in confirmed] == [pytest.approx(450.0)] * 3
    assert results["t"].ceiling == 500.0


def test_the_plan_needs_three_confirmations() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        Plan(confirmations=2).check()


def test_a_round_that_holds_nothing_widens_the_range_downwards() -> None:
    # the noisy knee: 1600 held in the search and in round 1, then neither 1600 nor 1440 held
    def measure(target: str, rate: float, label: str, round_no: int) -> Probe:
        holds = rate <= 1600.0 if round_no <= 1 else rate <= 1200.0
        return Probe(rate, rate, 10.0 if holds else 90.0, 0.0, 1000, 10.0, round=round_no)

    plan = Plan(start_rate=1600.0, rel_tol=0.1, max_probes=1, confirm_attempts=2)
    results, _ = run_all(["t"], measure, Criteria(50.0), plan, seed=0)
    data = results["t"].to_json()
    assert data["confirmed_rounds"] == 1
    assert [c["below"] for c in data["confirmed"]] == [None, pytest.approx(1296.0), pytest.approx(1296.0)]
    assert data["capacity"] == {"median": pytest.approx(1296.0), "low": pytest.approx(1296.0), "high": 1600.0}
    assert data["bracket"] == {"low": pytest.approx(1296.0), "high": 1600.0}


def test_one_hiccup_does_not_cap_the_search() -> None:
    measure, _ = synthetic()
    hiccups = {400.0}

    def noisy(target: str, rate: float, label: str, round_no: int) -> Probe:
        probe = measure(target, rate, label, round_no)
        if rate in hiccups:
            hiccups.discard(rate)  # once
            return Probe(rate, rate, 500.0, 0.0, probe.requests, 10.0, round=round_no)
        return probe

    result = TargetResult("t", 50.0)
    search(result, noisy, Criteria(50.0), Plan(start_rate=100.0, rel_tol=0.1, max_probes=12))
    assert [o for o, _ in result.outcomes][:4] == ["pass", "pass", "fail", "pass"]  # 100, 200, 400 twice
    assert result.best_rate is not None
    assert result.best_rate >= knee(50.0) * 0.9
    # without the retry the same hiccup caps the answer below 400
    hiccups.add(400.0)
    capped = TargetResult("t", 50.0)
    search(capped, noisy, Criteria(50.0), Plan(start_rate=100.0, rel_tol=0.1, max_probes=12, retry_failures=False))
    assert capped.best_rate is not None
    assert capped.best_rate < 400.0


def test_the_stated_rule_is_the_rule_judge_applies() -> None:
    criteria = Criteria(50.0)
    rule = criteria.rule()
    assert "0.95 × offered − 2·√(offered / duration)" in rule
    for part in ("p99 ≤ 50 ms", "errors under 1%", "more than 90 %"):
        assert part in rule
    # at 100 req/s over 10 s the floor is 95 − 2·√10 = 88.68 req/s, as the text says
    floor = 0.95 * 100 - 2 * (100 / 10) ** 0.5
    assert f"floor is {floor:.1f} req/s" in rule
    base = {"rate": 100.0, "p99_ms": 10.0, "fail_ratio": 0.0, "requests": 900, "duration_s": 10.0}
    assert criteria.judge(Probe(achieved_rps=floor + 0.01, **base))[0] == "pass"
    assert criteria.judge(Probe(achieved_rps=floor - 0.01, **base))[0] == "void"
    # 94 % achieved still passes: the floor is below 95 % by the noise term, which the text says
    assert criteria.judge(Probe(achieved_rps=94.0, **base))[0] == "pass"


def test_the_report_prints_the_rule_the_run_applied(tmp_path: Path) -> None:
    import shutil

    from loadtests import report

    out = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "fixtures" / "run", out)
    results = json.loads((out / "results.json").read_text())
    results["slo"]["rule"] = Criteria(results["slo"]["slo_ms"]).rule()
    logging = {"torchserve": "T-logging", "tf_server": "F-logging", "gateway": "G-logging"}
    results["serving"] = {**results.get("serving", {}), "logging": logging}
    (out / "results.json").write_text(json.dumps(results))
    text = (report.build(out).out / "report.md").read_text()
    assert results["slo"]["rule"] in text
    # the report names each stack's logging
    assert "- Logging: TorchServe T-logging; TF server F-logging; gateway G-logging" in text
    assert "≥ 95 % of the offered rate" not in text
