"""Speed is never bought with a wrong answer: every runtime's outputs against a reference (no framework imported).

Each worker saved what a runtime returned on the exact inputs it was timed on. Here every
entry gets the max absolute difference from its reference on those inputs: PyTorch
eager for a built-in model (the weights are made there), else the runtime the model's
manifest entry names as its source of truth, else the first artifact runtime that ran.
An entry over :data:`TOLERANCE` is marked ``mismatch`` and left out of every verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from contract.manifest import Manifest

TOLERANCE = 1e-4
#: The manifest's ``source.reference`` -> the runtime that computes it here.
SOURCE_RUNTIME = {"onnxruntime": "onnxruntime", "torchscript": "torchscript", "tensorflow": "savedmodel"}
FALLBACK_ORDER = ("torch_eager", "onnxruntime", "torchscript", "savedmodel", "tf_eager")


def reference_runtime(model: str, manifest: Manifest | None, ran: set[str]) -> str | None:
    """Which runtime's outputs the others of ``model`` are held to, among those that ran."""
    entry = manifest.models.get(model) if manifest else None
    if entry is not None and entry.origin == "user" and entry.source is not None:
        wanted = SOURCE_RUNTIME.get(entry.source.reference)
        if wanted in ran:
            return wanted
    return next((r for r in FALLBACK_ORDER if r in ran), None)


def max_abs_diff(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> float:
    """Largest absolute difference over every output; infinite when names or shapes differ."""
    if set(actual) != set(expected):
        return float("inf")
    worst = 0.0
    for name, value in expected.items():
        got = np.asarray(actual[name], dtype=np.float64)
        want = np.asarray(value, dtype=np.float64)
        if got.shape != want.shape:
            return float("inf")
        if want.size:
            worst = max(worst, float(np.abs(got - want).max()))
    return worst


def check(entries: list[dict[str, Any]], outputs: Path, manifest: Manifest | None) -> list[str]:
    """Set ``reference``, ``max_abs_diff`` and ``parity`` on every inference entry; returns the mismatches."""

    def load(model: str, batch: int, runtime: str) -> dict[str, np.ndarray]:
        with np.load(outputs / f"{model}-b{batch}-{runtime}.npz") as npz:
            return {key: npz[key] for key in npz.files}

    mismatches = []
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault((entry["model"], entry["batch"]), []).append(entry)
    for (model, batch), group in groups.items():
        reference = reference_runtime(model, manifest, {e["runtime"] for e in group})
        expected = load(model, batch, reference) if reference else None
        for entry in group:
            entry["reference"] = reference
            if expected is None:
                entry["max_abs_diff"], entry["parity"] = None, "no reference"
                continue
            diff = max_abs_diff(load(model, batch, entry["runtime"]), expected)
            entry["max_abs_diff"] = diff if np.isfinite(diff) else None  # JSON has no infinity
            entry["parity"] = "ok" if diff <= TOLERANCE else "mismatch"
            if entry["parity"] == "mismatch":
                mismatches.append(f"{model} batch {batch} {entry['runtime']}: max abs diff {diff:.2e} from {reference}")
    return mismatches
