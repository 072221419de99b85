"""Recorded load-test results, built from the numbers a run reported, for the verdict and report tests.

:func:`inceptionv3` is issue 22's run: InceptionV3 from ``keras.applications`` (weights=None,
75×75 input) added with ``duoserve models add`` and run with ``make run`` on a quiet 2-core
host (other processes 0 % of a core). From the issue:

- torch held no rate: p99 150 and 165 ms at 6.25 req/s, its lowest probe (about 14 requests
  each: 3 s probes), 503 ms at 25 req/s;
- tf held 8.4 req/s and torch_ort 6.25 req/s, each in 2 of 3 confirmation rounds;
- at 8 closed-loop users torch served 35.5 req/s, torch_ort 61.6 and tf 49.5.

The search's other probes (the rates between, their p50s) and the in-process latencies of
the manifest (``models add`` measures them; the issue does not give them) are plausible
fillers, chosen so that the torch artifact (Keras 3 on torch, traced) is 2.4× slower in
process than the ``.keras`` source on TensorFlow. The rest (environment, serving settings)
comes from the checked-in quick run, ``tests/loadtests/fixtures/run``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

BASE = Path(__file__).resolve().parents[1] / "loadtests" / "fixtures" / "run"
SLO_MS = 50.0


def probe(rate: float, p99: float, p50: float, outcome: str, label: str, round_no: int = 0) -> dict[str, Any]:
    """One stored probe as ``TargetResult.to_json`` wrote it before probes carried their sample counts: 3 s."""
    requests = round(rate * 3 * 0.75) if rate < 10 else round(rate * 3)
    verdict = "pass" if outcome == "pass" else f"p99 {p99:g} ms > {SLO_MS:g} ms"
    return {"rate": rate, "achieved_rps": rate * 0.97, "p99_ms": p99, "fail_ratio": 0.0, "requests": requests,
            "duration_s": 3.0, "p50_ms": p50, "stable": True, "loadgen_cpu_percent": 3.0, "label": label,
            "round": round_no, "window_p50s": [p50 * 0.97, p50, p50 * 1.03], "outcome": outcome,
            "verdict": verdict}  # fmt: skip


def target_result(target: str, probes: list[dict[str, Any]], rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored SLO result: the capacity and bracket computed as :class:`loadtests.slo.TargetResult` does."""
    values = [c["rate"] if c["rate"] is not None else c["below"] for c in rounds if c["rate"] or c["below"]]
    held = [c["rate"] for c in rounds if c["rate"] is not None]
    passed = [p["rate"] for p in probes if p["outcome"] == "pass" and p["round"] == 0]
    failed = [p["rate"] for p in probes if p["outcome"] == "fail"]
    best = max(passed, default=None)
    capacity = (
        {"median": sorted(values)[len(values) // 2], "low": min(values), "high": max(values)}
        if held
        else {"median": None, "low": None, "high": None}
    )
    passing = [p for p in probes if p["outcome"] == "pass"]
    return {
        "target": target,
        "slo_ms": SLO_MS,
        "max_rps": capacity["median"],
        "capacity": capacity,
        "bracket": {"low": min(values), "high": max([*held, best or 0.0])} if held else {"low": None,
                                                                                          "high": min(failed)},
        "best_rate": best,
        "ceiling": min(failed, default=None),
        "confirmed_rounds": len(held),
        "rounds": len(rounds),
        "achieved_rps": [c["achieved_rps"] for c in rounds if c["achieved_rps"] is not None],
        "confirmed": rounds,
        "stable": bool(held) and all(c["stable"] for c in rounds),
        "generator_bound": False,
        "low_load": min(passing, key=lambda p: p["rate"]) if passing else None,
        "probes": probes,
    }  # fmt: skip


def held(round_no: int, rate: float, p99: float) -> dict[str, Any]:
    return {"round": round_no, "rate": rate, "achieved_rps": rate * 0.97, "p99_ms": p99, "stable": True,
            "below": None}  # fmt: skip


def missed(round_no: int, below: float | None) -> dict[str, Any]:
    return {"round": round_no, "rate": None, "achieved_rps": None, "p99_ms": None, "stable": False, "below": below}


def _slo_results() -> dict[str, Any]:
    torch = [
        probe(25.0, 503.0, 380.0, "fail", "s1"), probe(25.0, 498.0, 371.0, "fail", "s1r"),
        probe(12.5, 262.0, 190.0, "fail", "s2"), probe(12.5, 247.0, 181.0, "fail", "s2r"),
        probe(6.25, 165.0, 104.0, "fail", "s3"), probe(6.25, 150.0, 98.0, "fail", "s3r"),
    ]  # fmt: skip
    tf = [
        probe(25.0, 210.0, 61.0, "fail", "s1"), probe(25.0, 195.0, 58.0, "fail", "s1r"),
        probe(12.5, 71.0, 34.0, "fail", "s2"), probe(12.5, 68.0, 33.0, "fail", "s2r"),
        probe(6.25, 38.0, 27.0, "pass", "s3"),
        probe(9.375, 57.0, 30.0, "fail", "s4"), probe(9.375, 54.0, 29.0, "fail", "s4r"),
        probe(7.8125, 44.0, 28.0, "pass", "s5"), probe(8.4, 47.0, 28.0, "pass", "s6"),
        probe(8.4, 46.0, 28.0, "pass", "c1a1", 1),
        probe(8.4, 53.0, 29.0, "fail", "c2a1", 2), probe(7.56, 51.0, 28.0, "fail", "c2a2", 2),
        probe(8.4, 48.0, 28.0, "pass", "c3a1", 3),
    ]  # fmt: skip
    ort = [
        probe(25.0, 120.0, 40.0, "fail", "s1"), probe(25.0, 110.0, 39.0, "fail", "s1r"),
        probe(12.5, 64.0, 27.0, "fail", "s2"), probe(12.5, 60.0, 26.0, "fail", "s2r"),
        probe(6.25, 42.0, 21.0, "pass", "s3"),
        probe(9.375, 70.0, 24.0, "fail", "s4"), probe(9.375, 66.0, 24.0, "fail", "s4r"),
        probe(7.8125, 55.0, 23.0, "fail", "s5"), probe(7.8125, 52.0, 23.0, "fail", "s5r"),
        probe(7.03, 51.0, 22.0, "fail", "s6"), probe(7.03, 53.0, 22.0, "fail", "s6r"),
        probe(6.25, 44.0, 21.0, "pass", "c1a1", 1),
        probe(6.25, 56.0, 22.0, "fail", "c2a1", 2), probe(5.625, 52.0, 21.0, "fail", "c2a2", 2),
        probe(6.25, 47.0, 21.0, "pass", "c3a1", 3),
    ]  # fmt: skip
    return {
        "torch": target_result("torch", torch, [missed(1, None), missed(2, None), missed(3, None)]),
        "torch_ort": target_result(
            "torch_ort", ort, [held(1, 6.25, 44.0), missed(2, 5.625 * 0.9), held(3, 6.25, 47.0)]
        ),
        "tf": target_result("tf", tf, [held(1, 8.4, 46.0), missed(2, 7.56 * 0.9), held(3, 8.4, 48.0)]),
    }


def _comparison_run(target: str, repeat: int, rps: float) -> dict[str, Any]:
    mean = 8 / rps * 1000  # 8 closed-loop users: Little's law
    figure = {"stable": True, "windows": 3, "window_s": 1.0, "rps_spread": 0.04, "latency_key": "p99",
              "latency_spread": 0.06, "short": {}, "per_window": [], "timing_means_ms": {}, "seconds": 3.0,
              "requests": round(rps * 3), "failures": 0, "rps": rps, "p50_ms": mean * 0.95, "p90_ms": mean * 1.3,
              "p95_ms": mean * 1.45, "p99_ms": mean * 1.8, "max_ms": mean * 2.2, "mean_ms": mean}  # fmt: skip
    return {"label": f"cmp_{target}_r{repeat}", "target": target, "users": 8, "rate": None, "figure": figure,
            "warmup_requests": round(rps), "warmup_failures": 0, "loadgen_cpu_percent": 9.0,
            "csv": f"csv/cmp_{target}_r{repeat}_stats.csv", "failures_csv": f"csv/cmp_{target}_r{repeat}_failures.csv",
            "samples": f"samples/cmp_{target}_r{repeat}.json", "sent_requests": round(rps * 4), "server": {},
            "host": {"cores": 2, "host_percent": 180.0, "stack_percent": 171.0, "loadgen_percent": 9.0,
                     "other_percent": 0.0}, "requests": round(rps * 3), "failures": 0, "rps": rps,
            "p99_ms": mean * 1.8, "stable": True, "achieved_ratio": None}  # fmt: skip


def _slo_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs = []
    for target, result in results.items():
        for p in result["probes"]:
            runs.append({"label": f"slo_{target}_{p['label']}", "target": target, "rate": p["rate"],
                         "loadgen_cpu_percent": 3.0, "achieved_ratio": 0.97,
                         "host": {"cores": 2, "other_percent": 0.0}})  # fmt: skip
    return runs


MADE_BY = {
    "torchscript": "Keras 3 (torch backend) + torch.jit.trace",
    "onnx": "torch.onnx",
    "tf": "Keras' SavedModel export",
}


def _latency(runtime: str, batch_1_ms: float, max_batch_ms: float) -> dict[str, Any]:
    return {"runtime": runtime, "batch_1_ms": batch_1_ms, "max_batch": 8, "max_batch_ms": max_batch_ms, "repeats": 20}


def manifest_entry() -> dict[str, Any]:
    """The model's manifest entry (``ModelEntry``'s JSON) as ``duoserve models add`` records it."""
    parity = {"against": "tensorflow", "tolerance_abs": 1e-4, "batches": [1, 8], "samples": 8,
              "outputs": {"predictions": {"max_abs": 2.1e-6, "max_rel": 3.0e-5}}}  # fmt: skip
    artifact = {"path": "x", "sha256": "0" * 64, "recipe": "r"}
    return {
        "name": "k_inceptionv3",
        "origin": "user",
        "source": {"format": "keras", "files": ["k_inceptionv3.keras"], "sha256": "1" * 64, "reference": "tensorflow"},
        "inputs": [{"name": "input_layer", "dtype": "float32", "shape": [75, 75, 3]}],
        "outputs": [{"name": "predictions", "dtype": "float32", "shape": [1000]}],
        "max_batch": 8,
        "parity": {kind: parity for kind in ("torchscript", "onnx", "tf")},
        "artifacts": {kind: artifact for kind in ("source", "torchscript", "onnx", "mar", "mar_ort", "tf")},
        "made_by": MADE_BY,
        "latency": {
            "source": _latency("tensorflow (Keras 3)", 25.0, 90.0),
            "torchscript": _latency("torch (TorchScript)", 61.0, 216.0),
            "onnx": _latency("onnxruntime", 14.0, 50.0),
            "tf": _latency("tensorflow (SavedModel)", 24.0, 88.0),
        },
    }


def inceptionv3(*, latency: bool = True) -> dict[str, Any]:
    """Issue 22's run as ``results.json`` (``latency=False``: a manifest without in-process latencies)."""
    from contract.manifest import ModelEntry
    from loadtests import provenance

    results: dict[str, Any] = copy.deepcopy(json.loads((BASE / "results.json").read_text()))
    entry_json = manifest_entry()
    if not latency:
        entry_json["latency"] = {}
    entry = ModelEntry.model_validate(entry_json)
    targets = ["torch", "torch_ort", "tf"]
    slo = _slo_results()
    results.update(
        model="k_inceptionv3",
        targets={t: t for t in targets},
        model_entry=entry.model_dump(
            mode="json", include={"origin", "source", "inputs", "outputs", "max_batch", "parity"}, exclude_none=True
        ),
        provenance=provenance.describe(entry, results["environment"]["versions"]),
        gateway_stats=None,
        wrk=None,
    )
    results["profile"]["model"] = "k_inceptionv3"
    results["profile"]["targets"] = targets
    runs = [_comparison_run(t, r, rps) for r in (1, 2) for t, rps in (("torch", 35.5), ("torch_ort", 61.6),
                                                                     ("tf", 49.5))]  # fmt: skip
    results["comparison"] = {"users": 8, "warmup_s": 1.0, "repeats": 2, "orders": [targets, targets], "runs": runs}
    # the default profile of that run (before this change): 1 s windows, a search from 25 req/s
    results["profile"]["windows"] = {"window_s": 1.0, "min_windows": 3, "max_windows": 4, "tolerance": 0.1}
    results["slo"] = {**results["slo"], "slo_ms": SLO_MS, "start_rate": 25.0, "rel_tol": 0.1, "max_probes": 10,
                      "confirm_attempts": 2, "warmup_s": 0.5, "window_s": 1.0, "max_windows": 3,
                      "targets": targets, "seed": 0, "orders": [targets] * 4, "results": slo,
                      "runs": _slo_runs(slo)}  # fmt: skip
    results["loadgen"] = {"max_cpu_percent": 9.0, "threshold_percent": 90.0, "saturated": False, "phases": {
        "comparison": {"runs": 6, "max_cpu_percent": 9.0, "saturated_runs": 0, "min_achieved_ratio": None,
                       "loop": "closed", "other_cpu_median": 0.0, "other_cpu_max": 0.0},
        "slo": {"runs": 34, "max_cpu_percent": 3.0, "saturated_runs": 0, "min_achieved_ratio": 0.97,
                "loop": "open", "other_cpu_median": 0.0, "other_cpu_max": 0.0}}}  # fmt: skip
    return results


def write_run(out: Path, results: dict[str, Any]) -> Path:
    """A run directory holding ``results``, as the runner leaves one (no samples: the plots do without)."""
    (out / "csv").mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return out
