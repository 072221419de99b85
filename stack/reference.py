"""The source model's own answers, computed the way ``models add`` computes its parity reference.

The source files kept in ``artifacts/sources/<model>/`` run in their own framework's
process (ONNX Runtime, torch, TensorFlow), never in the caller's process. The tests and the
zoo runner check what the backends answer against these.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from contract.artifacts import artifact_path
from contract.manifest import ModelEntry
from services.jobs import load_cases, save_cases
from stack.models.steps import Steps

_FORMATS = {"onnxruntime": "onnx", "torchscript": "torchscript", "torch_export": "torch_export"}
_WORKERS = {"onnx": "onnx", "torchscript": "torch", "torch_export": "torch", "keras": "tf", "savedmodel": "tf"}


def source_answers(root: Path, entry: ModelEntry, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``entry``'s source model's outputs on ``inputs`` (one case), by output name."""
    assert entry.source is not None, f"{entry.name} is a built-in model"
    source = artifact_path(root, entry.name, "source") / entry.source.files[0]
    fmt = _FORMATS.get(entry.source.reference) or ("keras" if source.suffix == ".keras" else "savedmodel")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        save_cases(work / "cases.npz", {"case": inputs})
        task = {
            "op": "run", "format": fmt, "path": str(source), "inputs": str(work / "cases.npz"),
            "out": str(work / "out.npz"), "input_names": entry.input_names, "output_names": entry.output_names,
            "signature": entry.tf_signature,
        }  # fmt: skip
        Steps(work, work / "steps.log").run(_WORKERS[fmt], [task])
        return load_cases(work / "out.npz")["case"]
