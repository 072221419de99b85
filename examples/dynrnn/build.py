"""Build the DynamicRNN example: what the exporters do with the packed model, the masked model
as TorchScript, a sample of variable lengths, and the weights for the TF side (nobuco).

``python -m examples.dynrnn.build OUT_DIR`` (the main venv).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from examples.common import attempt, quiet
from examples.dynrnn.model import FEATURES, MAX_STEPS, seeded


def inputs(rows: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, steps + 1, size=rows).astype(np.int64)
    lengths[0] = steps
    return {"x": rng.standard_normal((rows, steps, FEATURES)).astype(np.float32), "lengths": lengths}


def main(out: Path) -> None:
    packed, masked = seeded()
    torch.save(packed.state_dict(), out / "weights.pt")
    # the masked model answers as the packed one does (here, before anything is converted)
    worst = 0.0
    for rows, steps in ((1, 50), (7, 23), (32, 37)):
        case = {k: torch.from_numpy(v) for k, v in inputs(rows, steps, seed=steps).items()}
        with torch.inference_mode():
            worst = max(worst, float((packed(**case) - masked(**case)).abs().max()))
    example = {k: torch.from_numpy(v) for k, v in inputs(4, 20, seed=1).items()}
    args = (example["x"], example["lengths"])
    batch, seq = torch.export.Dim("batch", min=1, max=1024), torch.export.Dim("seq", min=2, max=MAX_STEPS)
    dynamic = ({0: batch, 1: seq}, {0: batch})
    legacy_axes = {"x": {0: "b", 1: "t"}, "lengths": {0: "b"}}
    tries = {
        "torch.export.export": lambda: torch.export.export(packed, args, dynamic_shapes=dynamic),
        "torch.onnx.export(dynamo=True)": lambda: torch.onnx.export(
            packed, args, str(out / "packed.onnx"), dynamo=True, dynamic_shapes=dynamic
        ),
        "torch.onnx.export(dynamo=False)": lambda: torch.onnx.export(
            packed, args, str(out / "packed.onnx"), dynamo=False, input_names=["x", "lengths"], dynamic_axes=legacy_axes
        ),
        "torch.jit.trace": lambda: torch.jit.trace(packed, args),
    }
    with quiet():
        exports = {what: attempt(call) for what, call in tries.items()}
        traced = torch.jit.trace(masked, args)
    traced.save(str(out / "dynrnn.pt"))
    np.savez(out / "sample.npz", **inputs(16, 23, seed=7))  # type: ignore[arg-type]
    (out / "build.json").write_text(
        json.dumps({"packed_vs_masked_max_abs": worst, "exporters_on_packed_model": exports}, indent=1)
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
