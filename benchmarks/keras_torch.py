"""Benchmark the torch sides a ``.keras`` source can have, against Keras on TensorFlow, in process.

``python -m benchmarks.keras_torch [--root artifacts/zoo] [--models resnet50v2 ...] [--repeats 3]``

For each Keras model already added to ``--root`` (``python -m examples zoo`` adds them), one
process with ``KERAS_BACKEND=torch`` makes and times each candidate for the torch side:

- *trace*: ``torch.jit.trace`` of the Keras-on-torch module (what ``models add`` kept until
  issue 22);
- *frozen trace*: the same trace through ``torch.jit.freeze``;
- *export program*: ``torch.export`` of the same module, run as ``ExportedProgram.module()``;
- *trace of the program*: ``torch.jit.trace`` of that program's module (the ATen graph);
- *onnx2torch*: onnx2torch (with duoserve's op registrations) on the model's ONNX artifact, traced;

and a second process times the source, Keras on TensorFlow (``tf.function``). Every candidate is
timed by :func:`services.jobs.time_calls` (the median of at least 5 calls, as ``models add``
times artifacts) at batch 1 and at the model's max batch, after checking it reproduces the
Keras-on-torch module within 1e-5 at both; one that fails shows why. The two processes
alternate ``--repeats`` times. Prints a Markdown table of min / median / max over the repeats,
with the median's ratio to Keras on TensorFlow. Run it under ``flock /work/measure.lock``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from contract.artifacts import artifact_path, default_root
from contract.manifest import read_manifest

CANDIDATES = ("trace", "frozen trace", "export program", "trace of the program", "onnx2torch")
DEFAULT_MODELS = ("resnet50v2", "efficientnetb0", "mobilenetv3s", "xception")


def _inputs(root: Path, name: str) -> tuple[Any, Any]:
    import numpy as np

    entry = read_manifest(root).models[name]
    (spec,) = entry.inputs
    rng = np.random.default_rng(0)
    big = rng.random((entry.max_batch, *spec.shape), dtype=np.float32)
    return big[:1], big


def _torch_child(root: Path, name: str) -> dict[str, Any]:
    import keras
    import numpy as np
    import torch

    from services.torch_api.convert import _onnx2torch

    entry = read_manifest(root).models[name]
    model = keras.models.load_model(root / "sources" / name / f"{name}.keras", compile=False)

    class Keras(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> Any:
            return self.model(x, training=False)

    module = Keras().eval()
    one, big = (torch.from_numpy(a) for a in _inputs(root, name))

    def trace() -> Any:
        return torch.jit.trace(module, (big,), check_trace=False)

    def program() -> Any:
        batch = torch.export.Dim("batch", min=1, max=max(2, entry.max_batch))
        return torch.export.export(module, (big,), dynamic_shapes=({0: batch},)).module()

    def from_onnx() -> Any:
        converted = _onnx2torch().convert(str(artifact_path(root, name, "onnx")))
        return torch.jit.trace(converted.eval(), (big,), check_trace=False)

    makers = {
        "trace": trace,
        "frozen trace": lambda: torch.jit.freeze(trace().eval()),
        "export program": program,
        "trace of the program": lambda: torch.jit.trace(program(), (big,), check_trace=False),
        "onnx2torch": from_onnx,
    }
    found: dict[str, Any] = {}
    with torch.inference_mode():
        want = {len(x): module(x).numpy() for x in (one, big)}
        for label, make in makers.items():
            try:
                fn = make()
                for x in (one, big):
                    got = fn(x)
                    got = got[0] if isinstance(got, (tuple, list)) else got
                    if not np.allclose(got.numpy(), want[len(x)], atol=1e-5):
                        raise ValueError(f"differs from the module at batch {len(x)}")
                found[label] = {str(len(x)): _median_ms(fn, x) for x in (one, big)}
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot be made is reported, not fatal
                found[label] = {"error": (str(exc).splitlines() or [type(exc).__name__])[0][:120]}
    return found


def _median_ms(fn: Any, *args: Any) -> float:
    """``services.jobs.time_calls`` of ``fn(*args)``: the estimator ``models add`` times artifacts with."""
    import functools

    from services.jobs import time_calls

    return time_calls(functools.partial(fn, *args))[0]


def _tf_child(root: Path, name: str) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    model = keras.models.load_model(root / "sources" / name / f"{name}.keras", compile=False)
    call = tf.function(lambda x: model(x, training=False))
    one, big = (tf.constant(a) for a in _inputs(root, name))
    return {"keras on tensorflow": {str(len(x)): _median_ms(lambda t: call(t).numpy(), x) for x in (one, big)}}


def _run_child(side: str, root: Path, name: str) -> dict[str, Any]:
    env = {**os.environ, "KERAS_BACKEND": "torch" if side == "torch" else "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.keras_torch", "--child", side, "--root", str(root), "--models", name],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{side} child for {name} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _cell(values: list[float], reference: float | None) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    ratio = f"; {mid / reference:.2f}×" if reference else ""
    return f"{mid:.1f} ({low:.1f}–{high:.1f}){ratio}"


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: per model and candidate, median ms (min–max) at batch 1 and the max batch, and × Keras on TF."""
    lines = [
        "| model | torch side | batch 1 ms (min–max; × Keras on TF) | max batch ms (same) |",
        "| --- | --- | ---: | ---: |",
    ]
    for name, repeats in results.items():
        reference = {
            b: statistics.median(r["keras on tensorflow"][b] for r in repeats)
            for b in repeats[0]["keras on tensorflow"]
        }
        for label in ("keras on tensorflow", *CANDIDATES):
            runs = [r[label] for r in repeats]
            if "error" in runs[0]:
                lines.append(f"| {name} | {label} | fails: {runs[0]['error']} | |")
                continue
            cells = [
                _cell([run[b] for run in runs], None if label.startswith("keras") else reference[b]) for b in runs[0]
            ]
            lines.append(f"| {name} | {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=default_root() / "zoo")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=("torch", "tf"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (name,) = args.models
        print(json.dumps((_torch_child if args.child == "torch" else _tf_child)(args.root, name)))
        return 0
    results: dict[str, list[dict[str, Any]]] = {}
    for name in args.models:
        for repeat in range(args.repeats):
            sides = ("torch", "tf") if repeat % 2 == 0 else ("tf", "torch")
            merged: dict[str, Any] = {}
            for side in sides:
                merged.update(_run_child(side, args.root, name))
            results.setdefault(name, []).append(merged)
            print(f"{name}: repeat {repeat + 1} done", file=sys.stderr)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
