"""The ATen lowering under test: export a torch module, write its graph here, lower and run it in a TF worker.

The test process imports torch (it builds the models and computes the reference); TensorFlow
runs only in ``python -m services.tf_api.convert JOB`` (as ``duoserve models add`` runs it),
so the two frameworks never share a process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contract.manifest import ModelEntry
from services.jobs import load_cases, save_cases
from services.torch_api.convert import HANDLERS as TORCH_TASKS
from tests.utils.servers import REPO

Case = dict[str, np.ndarray]


def entry(
    inputs: Sequence[tuple[str, torch.Tensor]],
    outputs: Sequence[str] = ("output",),
    dynamic: dict[str, Sequence[int]] | None = None,
    most: int = 64,
    output_dtypes: Sequence[str] | None = None,
) -> ModelEntry:
    """A contract for ``inputs`` (name, example): batch axis implied; ``dynamic`` axes (per instance) are -1."""
    specs = []
    for name, example in inputs:
        shape = list(example.shape[1:])
        axes = (dynamic or {}).get(name, ())
        spec: dict[str, Any] = {"name": name, "dtype": str(example.dtype).removeprefix("torch."), "shape": shape}
        if axes:
            spec["shape"] = [-1 if i in axes else d for i, d in enumerate(shape)]
            spec["max_shape"] = [most if i in axes else d for i, d in enumerate(shape)]
        specs.append(spec)
    dtypes = output_dtypes or ["float32"] * len(outputs)
    return ModelEntry(
        name="lowered",
        inputs=specs,
        outputs=[{"name": n, "dtype": d, "shape": [1]} for n, d in zip(outputs, dtypes, strict=True)],
        max_batch=most,
    )


def export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], shapes: Any, path: Path) -> Path:
    """``torch.export`` with ``shapes`` (dynamic_shapes), saved as a ``.pt2``."""
    program = torch.export.export(module.eval(), args, dynamic_shapes=shapes)
    torch.export.save(program, str(path))
    return path


def to_graph(pt2: Path, contract: ModelEntry, out: Path) -> dict[str, Any]:
    """The torch worker's ``to_graph`` task, run here (this process has torch already)."""
    task = {"op": "to_graph", "path": str(pt2), "contract": contract.model_dump_json(), "out": str(out)}
    return TORCH_TASKS["to_graph"](task)


def reference(module: torch.nn.Module, contract: ModelEntry, cases: dict[str, Case]) -> dict[str, Case]:
    """The eager module's outputs per case."""
    found = {}
    for case, tensors in cases.items():
        with torch.inference_mode():
            out = module(*(torch.from_numpy(tensors[n]) for n in contract.input_names))
        values = out if isinstance(out, (tuple, list)) else (out,)
        found[case] = {n: v.numpy() for n, v in zip(contract.output_names, values, strict=True)}
    return found


def tf_job(work: Path, tasks: list[dict[str, Any]], timeout: float = 600) -> dict[str, Any]:
    """Run ``tasks`` in the TF worker; its answer (``ok``, ``results`` or ``error``) and the seconds it took."""
    work.mkdir(parents=True, exist_ok=True)
    job, result = work / "job.json", work / "job.result.json"
    job.write_text(json.dumps({"tasks": tasks, "result": str(result)}))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "services.tf_api.convert", str(job)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert result.exists(), done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.read_text())
    answer["seconds"] = time.monotonic() - started
    return answer


def write_cases(path: Path, cases: dict[str, Case]) -> str:
    return str(save_cases(path, cases))


def read_cases(path: Path) -> dict[str, Case]:
    return load_cases(path)


def max_diff(got: dict[str, Case], want: dict[str, Case]) -> dict[str, float]:
    """Max abs difference per case (over every output); a shape mismatch is infinite."""
    diffs = {}
    for case, outputs in want.items():
        worst = 0.0
        for name, value in outputs.items():
            other = got[case][name]
            if other.shape != value.shape:
                return {case: float("inf")}
            if value.size:
                worst = max(worst, float(np.abs(other.astype(np.float64) - value.astype(np.float64)).max()))
        diffs[case] = worst
    return diffs
