"""The verdict and the comparison's mismatch warnings, on synthetic results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests import compare, verdict
from tests.utils.servers import REPO


def slo_result(
    median: float,
    low: float,
    high: float | None,
    p50: float = 5.0,
    windows=(4.9, 5.0, 5.1),
    held: int = 3,
    rounds: int = 3,
    **kw: Any,
):
    """A stored SLO result as :meth:`loadtests.slo.TargetResult.to_json` writes it, with its confirmation counts."""
    return {
        "capacity": {"median": median, "low": median * 0.98, "high": median * 1.02},
        "bracket": {"low": low, "high": high},
        "confirmed_rounds": held,
        "rounds": rounds,
        "generator_bound": kw.get("generator_bound", False),
        "low_load": {"rate": 25.0, "p50_ms": p50, "window_p50s": list(windows)},
    }


def test_a_clear_winner_and_by_how_much() -> None:
    found = verdict.decide(
        {"torch": slo_result(1000, 950, 1100, p50=3.0, windows=(2.9, 3.0, 3.1)), "tf": slo_result(500, 480, 560)},
        "duoserve-compat",
    )
    assert found["throughput"]["winner"] == "torch"
    assert found["throughput"]["factor"] == pytest.approx(2.0)
    assert found["throughput"]["text"] == "torch serves the most under the SLO: 1,000 req/s, 2.00× tf (500 req/s)"
    assert found["latency"]["winner"] == "torch"
    assert found["latency"]["text"].startswith("torch has the lowest p50 at low load: 3.00 ms at 25 req/s")
    assert found["tf_server"] == "duoserve-compat"


def test_overlapping_brackets_give_no_clear_winner() -> None:
    found = verdict.decide({"torch": slo_result(1000, 900, 1100), "tf": slo_result(950, 880, 1050)}, "x")
    assert found["throughput"]["winner"] is None
    assert found["throughput"]["text"] == (
        "no clear winner: torch has the highest median (1,000 req/s, range 900–1,100) but its range overlaps tf"
    )
    # the same low-load p50 windows overlap too
    assert found["latency"]["winner"] is None
    assert found["latency"]["text"].startswith("no clear winner at low load")


def test_two_overlapping_leaders_and_one_below_both() -> None:
    found = verdict.decide(
        {
            "torch": slo_result(1600, 1296, 1600),
            "torch_ort": slo_result(1440, 1296, 1600),
            "tf": slo_result(990, 990, 1100),
        },
        "x",
    )
    assert found["throughput"]["winner"] is None
    assert found["throughput"]["text"].endswith("overlaps torch_ort; tf below both")


def test_a_generator_bound_capacity_is_at_least_and_cannot_beat_an_overlap() -> None:
    found = verdict.decide(
        {"torch": slo_result(800, 780, None, generator_bound=True), "tf": slo_result(500, 480, 560)}, "x"
    )
    assert found["throughput"]["winner"] == "torch"
    assert "(at least: the load generator bounded it)" in found["throughput"]["text"]
    # a bound capacity has no ceiling: nothing below it can be called the winner
    found = verdict.decide(
        {"torch": slo_result(500, 480, None, generator_bound=True), "tf": slo_result(800, 780, 900)}, "x"
    )
    assert found["throughput"]["winner"] is None


def test_a_stack_that_held_too_few_confirmation_rounds_cannot_be_ranked() -> None:
    shaky = {**slo_result(225, 225, 225), "confirmed_rounds": 1, "rounds": 3}
    found = verdict.decide({"torch": slo_result(1000, 950, 1100), "torch_ort": shaky}, "x")
    assert found["throughput"]["winner"] is None
    # nothing measured says the host was noisy, so the verdict does not blame it (tests/loadtests/test_verdict_cases.py)
    assert found["throughput"]["text"] == (
        "no clear winner: not every stack's capacity was confirmed (torch_ort held 1 of 3 confirmation rounds; "
        "at least 2 needed): torch_ort's capacity sits where the same rate passes and fails (no sign of a noisy host)"
    )


@pytest.mark.parametrize(("held", "ranked"), [(3, True), (2, True), (1, False), (0, False)])
def test_the_confirmation_gate_counts_the_rounds_each_stack_held(held: int, ranked: bool) -> None:
    found = verdict.decide(
        {"torch": slo_result(1000, 950, 1100, held=held), "tf": slo_result(500, 480, 560)}, "duoserve-compat"
    )
    assert (found["throughput"]["winner"] == "torch") is ranked
    if not ranked:
        assert f"torch held {held} of 3 confirmation rounds; at least 2 needed" in found["throughput"]["text"]


def _searched(capacity: float, failing_rounds: set[int]) -> dict[str, Any]:
    """A real :func:`loadtests.slo.run_all` on a synthetic server whose listed confirmation rounds fail."""
    from loadtests.slo import Criteria, Plan, Probe, run_all

    def measure(target: str, rate: float, label: str, round_no: int) -> Probe:
        bad = rate > capacity or round_no in failing_rounds
        return Probe(rate, rate, 80.0 if bad else 5.0, 0.0, int(rate * 5), duration_s=5.0)

    found, _ = run_all(["t"], measure, Criteria(50.0), Plan(start_rate=25.0, rel_tol=0.1), seed=0)
    return found["t"].to_json()


def test_the_gate_on_counts_written_by_a_real_search() -> None:
    steady, noisy = _searched(800, set()), _searched(400, {1, 3})
    assert (steady["confirmed_rounds"], steady["rounds"]) == (3, 3)
    assert (noisy["confirmed_rounds"], noisy["rounds"]) == (1, 3)
    found = verdict.decide({"torch": steady, "tf": noisy}, "x")
    assert found["throughput"]["winner"] is None
    assert "tf held 1 of 3 confirmation rounds" in found["throughput"]["text"]
    # the same search with every round held ranks the stacks
    found = verdict.decide({"torch": steady, "tf": _searched(400, set())}, "x")
    assert found["throughput"]["winner"] == "torch"


def test_a_capacity_without_confirmation_counts_is_refused() -> None:
    bare = slo_result(1000, 950, 1100)
    del bare["confirmed_rounds"], bare["rounds"]
    with pytest.raises(ValueError, match="SLO result for torch has a capacity but no confirmation rounds"):
        verdict.decide({"torch": bare, "tf": slo_result(500, 480, 560)}, "x")


def test_no_stack_held_the_slo() -> None:
    empty = {"capacity": {"median": None}, "bracket": {"low": None, "high": 25.0}, "low_load": None}
    found = verdict.decide({"torch": empty, "tf": empty}, "x")
    assert found["throughput"] == {"winner": None, "text": "no stack held the SLO at any rate probed"}
    assert found["latency"]["text"] == "no low-load latency was measured"


def test_no_stack_held_the_slo_names_each_stacks_floor() -> None:
    def failed(rates_p99: list[tuple[float, float]]) -> dict[str, Any]:
        probes = [{"rate": r, "p99_ms": p, "outcome": "fail"} for r, p in rates_p99]
        return {"slo_ms": 50, "capacity": {"median": None}, "bracket": {"low": None, "high": 1.0}, "probes": probes}

    found = verdict.decide(
        {"torch": failed([(25, 1201.2), (1.0, 93.1), (1.0, 124.5)]), "tf": failed([(1.0, 70.4)])}, "x"
    )
    assert found["throughput"] == {
        "winner": None,
        "text": "no stack held the SLO at any rate probed: the best p99 at the lowest rate was torch 93 ms at 1 "
        "req/s, tf 70 ms at 1 req/s, above the bound of 50 ms even with no load to speak of; run again with a bound "
        "above that floor (`make run RUN_ARGS='--slo-ms N'`)",
    }


def results(**over: Any) -> dict[str, Any]:
    base = {"model": "digits", "batch": 1, "seed": 0, "slo": {"slo_ms": 50}, "config_hash": "aaa",
            "environment": {"tf_server": "duoserve-compat"}}  # fmt: skip
    return {**base, **over}


def test_mismatches_name_every_difference_and_each_value() -> None:
    assert compare.mismatches([("a", results()), ("b", results())]) == []
    found = compare.mismatches([("a", results()), ("b", results(model="mlp", config_hash="bbb", batch=8))])
    assert found == [
        "runs differ in model (a: digits, b: mlp)",
        "runs differ in batch (a: 1, b: 8)",
        "runs differ in stack configuration (a: aaa, b: bbb)",
    ]


def test_compare_refuses_a_directory_without_a_run(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "compare", str(tmp_path), str(tmp_path / "nope")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"loadtests: {tmp_path}: no results.json (not a `python -m loadtests run` report directory)"
    )
    (tmp_path / "results.json").write_text(json.dumps({"model": "digits"}))
    done = subprocess.run([sys.executable, "-m", "loadtests", "report", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert "not a run of this version (missing batch, comparison, profile)" in done.stderr


def probes(held: list[float], failed: list[float]) -> list[dict[str, Any]]:
    return [{"rate": r, "outcome": "pass"} for r in held] + [{"rate": r, "outcome": "fail"} for r in failed]


def test_the_range_reaches_the_lowest_failure_above_what_held() -> None:
    # a capacity is resolved only to the bisection's step: 1300 held and 1440 failed says "1300 to 1440"
    torch = {**slo_result(1300, 1300, 1300), "probes": probes([800, 1300], [1440, 1600, 3200])}
    ort = {**slo_result(1500, 1350, 1500), "probes": probes([800, 1350, 1500], [1600, 3200])}
    assert verdict.Capacity.of("torch", torch).high == 1440
    found = verdict.decide({"torch": torch, "torch_ort": ort}, "x")
    assert found["throughput"]["winner"] is None
    assert found["throughput"]["text"].endswith("but its range overlaps torch")
    # clear of the other's whole range: a winner
    far = {**slo_result(2000, 1900, 2000), "probes": probes([1900, 2000], [2200])}
    assert verdict.decide({"torch": torch, "torch_ort": far}, "x")["throughput"]["winner"] == "torch_ort"


def test_stacks_probed_under_different_host_load_are_not_ranked() -> None:
    results = {"torch": slo_result(900, 900, 1000), "torch_ort": slo_result(2800, 2800, 3200)}
    found = verdict.decide(results, "x", {"torch": 88.0, "torch_ort": 0.0})
    assert found["throughput"]["winner"] is None
    assert found["throughput"]["text"] == (
        "no clear winner: other processes on this host took very different shares of the CPU while the stacks "
        "were probed (torch 88 %, torch_ort 0 % of a core), so their capacities are not comparable"
    )
    # comparable load: the ranking stands
    assert verdict.decide(results, "x", {"torch": 20.0, "torch_ort": 5.0})["throughput"]["winner"] == "torch_ort"
