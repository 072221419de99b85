"""The SLO search on a synthetic server: p99(rate) = base / (1 - rate / capacity)."""

from __future__ import annotations

import math

import pytest

from loadtests.slo import Criteria, Probe, search

BASE_MS = 5.0
CAPACITY = 1000.0


def synthetic(error_above: float = math.inf, error_ratio: float = 0.05):
    calls: list[tuple[float, bool]] = []

    def measure(rate: float, confirm: bool) -> Probe:
        calls.append((rate, confirm))
        if rate >= CAPACITY:
            return Probe(rate, CAPACITY, 10_000.0, 0.0, int(CAPACITY), confirm, 10.0)
        p99 = BASE_MS / (1 - rate / CAPACITY)
        errors = error_ratio if rate > error_above else 0.0
        return Probe(rate, rate, p99, errors, int(rate * 10), confirm, 10.0)

    return measure, calls


def knee(slo_ms: float) -> float:
    return CAPACITY * (1 - BASE_MS / slo_ms)


@pytest.mark.parametrize("slo_ms", [10.0, 50.0, 200.0])
def test_finds_the_knee_from_below(slo_ms: float) -> None:
    measure, calls = synthetic()
    result = search(measure, Criteria(slo_ms), start_rate=50.0, max_probes=12, rel_tol=0.02)
    assert result.confirmed
    assert result.max_rate is not None
    assert knee(slo_ms) * 0.96 <= result.max_rate <= knee(slo_ms)
    assert result.p99_ms is not None
    assert result.p99_ms <= slo_ms
    assert calls[-1][1] is True  # the answer comes from a confirmation run
    assert len(calls) <= 12 + 2


def test_uses_a_known_upper_bound_and_few_probes() -> None:
    measure, calls = synthetic()
    result = search(measure, Criteria(50.0), start_rate=800.0, upper=1000.0, max_probes=4, rel_tol=0.1)
    assert result.max_rate is not None
    assert knee(50.0) * 0.85 <= result.max_rate <= knee(50.0)
    assert len(calls) <= 4 + 2


def test_honours_the_error_bound() -> None:
    measure, _ = synthetic(error_above=600.0)
    result = search(measure, Criteria(50.0, max_fail_ratio=0.01), start_rate=100.0, max_probes=12, rel_tol=0.02)
    assert result.max_rate is not None
    assert 600.0 * 0.96 <= result.max_rate <= 600.0
    failing = [p for p, v in zip(result.probes, result.verdicts, strict=True) if v and "errors" in v]
    assert failing
    assert all(p.rate > 600.0 for p in failing)


def test_no_rate_passes_when_even_idle_latency_breaks_the_slo() -> None:
    measure, calls = synthetic()
    result = search(measure, Criteria(2.0), start_rate=100.0, max_probes=6)
    assert result.max_rate is None
    assert result.max_rps is None
    assert not result.confirmed
    assert len(calls) <= 6


def test_a_failed_confirmation_steps_down() -> None:
    def measure(rate: float, confirm: bool) -> Probe:
        # passes short probes up to 500, but a long run only holds 450
        limit = 450.0 if confirm else 500.0
        return Probe(rate, rate, 10.0 if rate <= limit else 90.0, 0.0, 100, confirm, 10.0)

    result = search(
        measure, Criteria(50.0), start_rate=480.0, upper=500.0, max_probes=1, confirm_attempts=3, rel_tol=0.1
    )
    assert result.confirmed
    assert result.max_rate == pytest.approx(480.0 * 0.9)


def test_a_target_that_cannot_keep_up_fails_the_probe() -> None:
    criteria = Criteria(50.0)
    assert criteria.verdict(Probe(1000.0, 700.0, 10.0, 0.0, 7000, duration_s=10.0)) is not None
    # Poisson noise on a short probe is not a failure
    assert criteria.verdict(Probe(100.0, 88.0, 10.0, 0.0, 88, duration_s=1.0)) is None


def test_to_json_lists_each_probe_with_its_verdict() -> None:
    measure, _ = synthetic()
    data = search(measure, Criteria(50.0), start_rate=500.0, max_probes=3).to_json()
    probes = data["probes"]
    assert isinstance(probes, list)
    assert all("verdict" in p and "rate" in p for p in probes)
