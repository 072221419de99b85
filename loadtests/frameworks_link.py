"""The serving report's link to the in-process measurement beneath it (``python -m benchmarks.frameworks``).

Finds the newest ``reports/frameworks-*/frameworks.json`` beside a load-test run and
takes, for the run's model and batch, the best in-process p50 of each runtime a serving
target uses (TorchServe's TorchScript and ONNX Runtime, the TF server's SavedModel), so
the report can say what share of serving latency is framework compute. It reads JSON
only: the load tests never import a framework.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: The in-process runtime that computes each serving backend's answer.
RUNTIME_OF_BACKEND = {"torch": "torchscript", "torch_ort": "onnxruntime", "tf": "savedmodel"}


def latest(reports: Path) -> Path | None:
    """The newest ``frameworks-<time>/frameworks.json`` under ``reports``, or None."""
    found = sorted(reports.glob("frameworks-*/frameworks.json"))
    return found[-1] if found else None


def framework_compute(
    reports: Path, run_dir: Path, model: str, batch: int, serving_p50_ms: dict[str, tuple[str, float | None]]
) -> dict[str, Any] | None:
    """The link and, per serving target, ``framework ms of the p50 ms (share)``; None without a frameworks report.

    ``serving_p50_ms`` maps a target name to (its backend, its p50 in ms). Runtimes whose
    outputs disagreed with the reference are not used.
    """
    path = latest(reports)
    if path is None:
        return None
    data = json.loads(path.read_text())
    best: dict[str, float] = {}
    for entry in data.get("inference", []):
        if entry["model"] != model or entry["batch"] != batch or entry.get("parity") == "mismatch":
            continue
        runtime = entry["runtime"]
        best[runtime] = min(best.get(runtime, float("inf")), float(entry["p50_ms"]))
    shares = []
    for target, (backend, p50) in serving_p50_ms.items():
        runtime = RUNTIME_OF_BACKEND.get(backend)
        compute = best.get(runtime) if runtime else None
        if compute is None or not p50:
            continue
        shares.append(
            {"target": target, "runtime": runtime, "framework_ms": compute, "p50_ms": p50, "share": compute / p50}
        )
    environment = data.get("environment", {})
    return {
        "report": os.path.relpath(path.parent / "report.html", run_dir),
        "created": data.get("created"),
        "device": environment.get("device"),
        "threads": environment.get("threads"),
        "best_p50_ms": best,
        "shares": shares,
    }
