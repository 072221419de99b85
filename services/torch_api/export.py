"""PyTorch side of ``make artifacts``: weights, TorchScript, ONNX and TorchServe archives.

Run by ``stack.build`` (``python -m services.torch_api.export --root artifacts --job
digits:weights --job digits:torchscript ...``), which decides what is stale and writes
each model's contract into the manifest first; this module reads the contract from
there and builds only what it is told to, each output written atomically. Every
exported program is checked against the eager model before it replaces the old file.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from contract import MAR_FILES
from contract.artifacts import artifact_path, atomic_file, write_json
from contract.manifest import ModelEntry, read_manifest
from contract.tensors import sample_inputs
from services.torch_api.settings import model_config
from services.torch_api.train import load_model, make_model, save_weights

HERE = Path(__file__).resolve().parent
HANDLER = HERE / "handler.py"
CONTRACT = HERE.parents[1] / "contract"
#: The model's contract inside a .mar.
MODEL_JSON = "model.json"
#: Largest difference an export may show against the eager model before it is refused.
EXPORT_TOLERANCE = 1e-4
STAGES = ("weights", "torchscript", "onnx", "mar", "mar_ort")


def example(entry: ModelEntry, rows: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded inputs from the contract, in the contract's input order."""
    arrays = sample_inputs(entry, rows, seed)
    return tuple(torch.from_numpy(arrays[name]) for name in entry.input_names)


def _check_close(name: str, what: str, expected: np.ndarray, actual: np.ndarray) -> None:
    diff = float(np.abs(expected - actual).max())
    if diff > EXPORT_TOLERANCE:
        raise RuntimeError(f"{name}: {what} differs from the eager model by {diff:.2e} > {EXPORT_TOLERANCE}")


def export_weights(root: Path, entry: ModelEntry) -> dict[str, float]:
    """Create (train or seed) the weights and write ``weights/<name>.npz``; returns metrics."""
    model, metrics = make_model(entry.name)
    save_weights(model, artifact_path(root, entry.name, "weights"))
    return metrics


def export_torchscript(root: Path, entry: ModelEntry) -> None:
    """Trace the eager model into ``torchscript/<name>.pt``.

    Traced with TF32 off: ``torch.jit.trace`` stores cuDNN's ``allow_tf32`` in every
    convolution as a constant, so a trace taken with PyTorch's default (on) runs ResNet's
    convolutions in TF32 on any GPU, whatever the serving process sets; measured on an H200:
    1.3-2.4e-3 off the eager model, over the 1e-4 every runtime is held to.
    """
    model = load_model(entry.name, artifact_path(root, entry.name, "weights"))
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated upstream but is what TorchServe serves.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        traced = torch.jit.trace(model, example(entry, 2))
        check = example(entry, 5, seed=1)
        _check_close(entry.name, "TorchScript", model(*check).numpy(), traced(*check).numpy())
        with atomic_file(artifact_path(root, entry.name, "torchscript")) as tmp:
            torch.jit.save(traced, str(tmp))


def export_onnx(root: Path, entry: ModelEntry) -> None:
    """Export ``onnx/<name>.onnx`` (dynamic batch axis) with the dynamo exporter."""
    import onnxruntime as ort

    model = load_model(entry.name, artifact_path(root, entry.name, "weights"))
    batch = torch.export.Dim("batch", min=1, max=max(2, entry.max_batch))
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        program = torch.onnx.export(
            model,
            example(entry, 2),
            input_names=entry.input_names,
            output_names=entry.output_names,
            dynamic_shapes=tuple({0: batch} for _ in entry.inputs),
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    with atomic_file(artifact_path(root, entry.name, "onnx")) as tmp:
        program.save(str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        check = example(entry, 5, seed=1)
        with torch.no_grad():
            expected = model(*check).numpy()
        feed = {name: tensor.numpy() for name, tensor in zip(entry.input_names, check, strict=True)}
        _check_close(entry.name, "ONNX", expected, session.run(None, feed)[0])


def export_mar(
    root: Path,
    entry: ModelEntry,
    *,
    ort: bool,
    serialized: Path | None = None,
    config: dict[str, Any] | None = None,
    out_root: Path | None = None,
) -> None:
    """Pack ``model-store/<name>[_ort].mar``: serialized model, handler, contract, model settings.

    ``serialized`` replaces the model's own TorchScript/ONNX file, ``config`` the settings
    from ``model-config.yaml`` and ``out_root`` the destination root (the benchmark packs
    TorchServe-default archives this way).
    """
    name = entry.name
    torch_kind = "torch_export" if "torch_export" in entry.artifacts else "torchscript"
    serialized = serialized or artifact_path(root, name, "onnx" if ort else torch_kind)
    archive_name = f"{name}_ort" if ort else name
    with tempfile.TemporaryDirectory(prefix="duoserve-mar-") as work_dir:
        work = Path(work_dir)
        extra = work / "extra"
        (extra / "contract").mkdir(parents=True)
        for file in MAR_FILES:
            shutil.copy(CONTRACT / file, extra / "contract" / file)
        contract_only = entry.model_copy(update={"artifacts": {}, "parity": {}, "metrics": {}})
        (extra / MODEL_JSON).write_text(contract_only.model_dump_json(indent=2, exclude_none=True))
        (work / "model-config.yaml").write_text(yaml.safe_dump(model_config(name) if config is None else config))
        out = work / "out"
        out.mkdir()
        subprocess.run(
            [
                str(Path(sys.executable).with_name("torch-model-archiver")),
                "--model-name",
                archive_name,
                "--version",
                "1.0",
                "--serialized-file",
                str(serialized),
                "--handler",
                str(HANDLER),
                "--extra-files",
                str(extra),
                "--config-file",
                str(work / "model-config.yaml"),
                "--export-path",
                str(out),
                "--force",
            ],
            check=True,
        )
        with atomic_file(artifact_path(out_root or root, name, "mar_ort" if ort else "mar")) as tmp:
            shutil.copy(out / f"{archive_name}.mar", tmp)


def run_job(root: Path, entry: ModelEntry, stage: str) -> dict[str, float]:
    """Build one stage of one model; returns metrics (only the weights stage has any)."""
    if stage == "weights":
        return export_weights(root, entry)
    if stage == "torchscript":
        export_torchscript(root, entry)
    elif stage == "onnx":
        export_onnx(root, entry)
    elif stage in ("mar", "mar_ort"):
        export_mar(root, entry, ort=stage == "mar_ort")
    else:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return {}


def main(argv: list[str] | None = None) -> int:
    """Command line: build the given ``model:stage`` jobs in order, write metrics to ``--result``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--job", action="append", default=[], help="model:stage, in build order")
    parser.add_argument("--result", type=Path, help="JSON file for per-model metrics")
    args = parser.parse_args(argv)
    manifest = read_manifest(args.root)
    metrics: dict[str, dict[str, float]] = {}
    for job in args.job:
        name, _, stage = job.partition(":")
        print(f"[torch] {name}: {stage}", flush=True)
        result = run_job(args.root, manifest.model(name), stage)
        if result:
            metrics[name] = result
    if args.result:
        write_json(args.result, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
