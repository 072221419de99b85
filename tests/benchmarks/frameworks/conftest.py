"""One tiny end-to-end run of every framework worker, shared by the tests that read its results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.frameworks import __main__ as cli
from benchmarks.frameworks import report
from benchmarks.frameworks.plan import FRAMEWORKS, Plan, Timing, Training

THREADS = 2


def tiny_plan(artifacts: Path) -> Plan:
    """Every runtime and training program, the smallest settings that still exercise them."""
    return Plan(
        device="cpu",
        threads=THREADS,
        seed=0,
        artifacts=str(artifacts),
        batches={"mlp": [1, 8], "digits": [8]},
        rnn_batch=8,
        training=Training(
            repeats=1,
            simplenn_epochs=2,
            dense784_epochs=2,
            digits_epochs=2,
            digits_target=0.5,
            digits_repeats=1,
            rnn_epochs=2,
            rnn_sequences=64,
        ),
        timing=Timing(warmup_calls=2, repeats=2, repeat_s=0.0, min_calls=2, max_calls=2),
    )


@pytest.fixture(scope="session")
def tiny_run(artifacts_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The combined ``frameworks.json`` of a tiny run, with its report written to ``out``."""
    out = tmp_path_factory.mktemp("frameworks")
    work = out / "work"
    work.mkdir()
    plan = tiny_plan(artifacts_root)
    plan_path = work / "plan.json"
    plan_path.write_text(json.dumps(plan.to_json()))
    results = [cli.run_worker(fw, plan_path, work, out / "logs") for fw in FRAMEWORKS]
    for result in results:
        assert result["available"], f"{result['framework']}: {result['reason']}"
    combined = cli.combine(plan, results, work, (0.0, 0.0, 0.0))
    combined["elapsed_s"] = 0.0
    (out / "frameworks.json").write_text(json.dumps(combined))
    report.build(out, combined)
    return {"result": json.loads((out / "frameworks.json").read_text()), "out": out, "plan": plan}
