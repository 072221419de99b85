"""One framework's measurements in its own process: ``python -m benchmarks.frameworks.worker``.

``--framework pytorch|onnxruntime|tensorflow --plan PLAN.json --work DIR --result OUT.json``.
torch and TensorFlow never share a process in duoserve, so the parent
(:mod:`benchmarks.frameworks.__main__`) runs one worker per framework, one after the
other, and combines their JSON. The PyTorch worker runs first: it writes the training
programs' initial weights (``DIR/init/``) that the TensorFlow worker starts from. Every
runtime's outputs on the inputs it was timed on go to ``DIR/outputs/`` for the parity
check. Whatever cannot run is skipped with its reason, printed and recorded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from benchmarks.frameworks import data, training
from benchmarks.frameworks.plan import RUNTIMES, Plan
from benchmarks.frameworks.runtime import Bind, UnavailableError
from benchmarks.frameworks.timing import GpuSampler, measure
from contract.artifacts import ArtifactError
from contract.manifest import read_manifest
from contract.tensors import sample_inputs

#: The DynamicRNN's inference batch is drawn with this seed offset (its training data uses others).
RNN_INFERENCE_SEED = 7
#: Initial weights and check batch must agree across frameworks within this before anything is timed.
INIT_TOLERANCE = 1e-4


def output_path(work: Path, model: str, batch: int, runtime: str) -> Path:
    """Where a runtime's outputs on its timed inputs are kept for the parity check."""
    return work / "outputs" / f"{model}-b{batch}-{runtime}.npz"


def _side(framework: str) -> ModuleType:
    required = {"pytorch": "torch", "tensorflow": "tensorflow", "onnxruntime": "onnxruntime"}[framework]
    if importlib.util.find_spec(required) is None:
        raise ImportError(f"{required} is not installed in this Python ({sys.executable})")
    if framework == "pytorch":
        from benchmarks.frameworks import inference_torch

        return inference_torch
    if framework == "tensorflow":
        from benchmarks.frameworks import inference_tf

        return inference_tf
    from benchmarks.frameworks import inference_ort

    return inference_ort


class Worker:
    """Runs one framework's part of a plan and collects entries and skips."""

    def __init__(self, framework: str, plan: Plan, work: Path) -> None:
        self.framework = framework
        self.plan = plan
        self.work = work
        self.training: list[dict[str, Any]] = []
        self.inference: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.gpu = GpuSampler() if plan.device == "cuda" else None

    def skip(self, what: str, model: str, reason: str, kind: str = "unavailable") -> None:
        """Record what did not run; ``kind`` is ``unavailable`` (cannot run here) or ``batch`` (above max_batch)."""
        print(f"[{self.framework}] skip {what} on {model}: {reason}", flush=True)
        self.skipped.append({"framework": self.framework, "what": what, "model": model, "reason": reason, "kind": kind})

    # -- training ---------------------------------------------------------------------------

    def train_all(self) -> None:
        if self.framework == "onnxruntime":
            return
        init = self.work / "init"
        for name in self.plan.training_models:
            if self.framework == "pytorch":
                from benchmarks.frameworks import article_torch

                article_torch.write_init(init, name, self.plan.seed)
            try:
                self._train(name, init)
            except UnavailableError as exc:
                self.skip("training", name, str(exc))

    def _train(self, name: str, init: Path) -> None:
        epochs = training.epochs_for(name, self.plan)
        target = training.target_for(name, self.plan)
        runs = []
        if self.framework == "pytorch":
            from benchmarks.frameworks import article_torch

            for _ in range(training.repeats_for(name, self.plan)):
                runs.append(article_torch.train(name, epochs, self.plan.seed, self.plan.device, target))
        else:
            from benchmarks.frameworks import article_keras

            weights = init / f"{name}.npz"
            if not weights.exists():
                raise UnavailableError(f"no initial weights at {weights} (the PyTorch worker writes them)")
            check = dict(np.load(init / f"{name}.check.npz"))
            diff = float(
                np.abs(article_keras.forward(article_keras.build(name, weights), check) - check["expected"]).max()
            )
            if diff > INIT_TOLERANCE:
                raise UnavailableError(f"the Keras twin differs from PyTorch by {diff:.2e} at the same weights")
            for _ in range(training.repeats_for(name, self.plan)):
                runs.append(article_keras.train(name, epochs, weights, target))
        entry = training.summarise(self.framework, name, runs, epochs, self.plan)
        print(
            f"[{self.framework}] train {name}: {entry['samples_per_s']:,.0f} samples/s, epoch {entry['epoch_s']:.3f} s,"
            f" first epoch {entry['first_epoch_s']:.3f} s, losses {[round(v, 4) for v in entry['losses']]}",
            flush=True,
        )
        self.training.append(entry)

    # -- inference --------------------------------------------------------------------------

    def _time(self, runtime: str, model: str, bind: Bind, arrays: dict[str, np.ndarray], batch: int) -> None:
        measured = measure(bind(arrays), self.plan.timing, during=self.gpu)
        gpu = self.gpu.result() if self.gpu is not None else None
        path = output_path(self.work, model, batch, runtime)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **measured.output)
        entry = {
            "runtime": runtime,
            "framework": self.framework,
            "model": model,
            "batch": batch,
            "device": self.plan.device,
            "threads": self.plan.threads,
            **measured.summary(batch),
            "gpu": gpu,
        }
        print(
            f"[{self.framework}] {model} b{batch} {runtime}: p50 {entry['p50_ms']:.3f} ms,"
            f" p99 {entry['p99_ms']:.3f} ms, {entry['samples_per_s']:,.0f} samples/s"
            f" (first call {entry['first_call_ms']:.0f} ms)",
            flush=True,
        )
        self.inference.append(entry)

    def infer_all(self, side: ModuleType) -> None:
        root = Path(self.plan.artifacts)
        mine = [r for r in self.plan.runtimes if RUNTIMES.get(r) == self.framework]
        manifest = read_manifest(root) if self.plan.batches else None
        for model, batches in self.plan.batches.items():
            assert manifest is not None
            if model not in manifest.models:
                self.skip("inference", model, f"not in {root}/manifest.json")
                continue
            entry = manifest.model(model)
            for runtime in mine:
                try:
                    bind = side.load(runtime, entry, root, self.plan.device)
                except (UnavailableError, ArtifactError) as exc:
                    self.skip(runtime, model, str(exc))
                    continue
                for batch in batches:
                    if batch > entry.max_batch:
                        self.skip(runtime, model, f"batch {batch} is above its max_batch {entry.max_batch}", "batch")
                        continue
                    self._time(runtime, model, bind, sample_inputs(entry, batch, self.plan.seed), batch)
        if "dynamic_rnn" in self.plan.training_models and self.framework != "onnxruntime":
            init = self.work / "init" / "dynamic_rnn.npz"
            if not init.exists():
                self.skip("inference", "dynamic_rnn", f"no initial weights at {init} (the PyTorch worker writes them)")
                return
            x, lengths, _ = data.sequences(self.plan.rnn_batch, self.plan.seed + RNN_INFERENCE_SEED)
            for runtime, bind in side.rnn(init, self.plan.device).items():
                if runtime in self.plan.runtimes:
                    self._time(runtime, "dynamic_rnn", bind, {"x": x, "lengths": lengths}, self.plan.rnn_batch)


def run(framework: str, plan: Plan, work: Path) -> dict[str, Any]:
    """Everything one framework measures under ``plan``, as the result JSON."""
    began = time.time()
    worker = Worker(framework, plan, work)
    result: dict[str, Any] = {"framework": framework, "available": True, "reason": None}
    try:
        side = _side(framework)
        result["environment"] = side.setup(plan.threads, plan.device)
    except (ImportError, UnavailableError) as exc:
        reason = str(exc)
        print(f"[{framework}] unavailable: {reason}", flush=True)
        return {
            **result,
            "available": False,
            "reason": reason,
            "environment": {},
            "training": [],
            "inference": [],
            "skipped": [],
        }
    if worker.gpu is not None:
        result["environment"]["nvml"] = worker.gpu.name() or worker.gpu.reason
    print(f"[{framework}] threads: {json.dumps(result['environment'])}", flush=True)
    worker.train_all()
    worker.infer_all(side)
    result.update(training=worker.training, inference=worker.inference, skipped=worker.skipped)
    result["elapsed_s"] = time.time() - began
    return result


def main(argv: list[str] | None = None) -> int:
    """Read the plan, run, write the result JSON (also on failure, with the traceback)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.frameworks.worker", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--framework", required=True, choices=["pytorch", "onnxruntime", "tensorflow"])
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    plan = Plan.from_json(json.loads(args.plan.read_text()))
    try:
        result = run(args.framework, plan, args.work)
        code = 0
    except Exception:  # noqa: BLE001 -- the parent reports a crashed worker and goes on with the others
        result = {
            "framework": args.framework,
            "available": False,
            "reason": traceback.format_exc(limit=8),
            "environment": {},
            "training": [],
            "inference": [],
            "skipped": [],
        }
        print(result["reason"], file=sys.stderr, flush=True)
        code = 1
    args.result.write_text(json.dumps(result, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
