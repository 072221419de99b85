"""The parity rule, the claims' verdict rules and the plan's quick bounds, on synthetic figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.frameworks import __main__ as cli
from benchmarks.frameworks import claims, parity
from benchmarks.frameworks.plan import RUNTIMES, Plan
from contract.manifest import Manifest, SourceInfo
from stack.builtins import BUILTINS


def test_max_abs_diff_names_and_shapes() -> None:
    a = {"y": np.array([[0.1, 0.2]], dtype=np.float32)}
    assert abs(parity.max_abs_diff(a, {"y": np.array([[0.1, 0.25]])}) - 0.05) < 1e-7
    assert parity.max_abs_diff(a, {"z": a["y"]}) == float("inf")
    assert parity.max_abs_diff(a, {"y": np.zeros((2, 2))}) == float("inf")


def test_check_marks_a_runtime_that_disagrees(tmp_path: Path) -> None:
    good = {"probabilities": np.array([[0.25, 0.75]], dtype=np.float32)}
    np.savez(tmp_path / "mlp-b1-torch_eager.npz", **good)
    np.savez(tmp_path / "mlp-b1-onnxruntime.npz", probabilities=good["probabilities"] + 5e-5)
    np.savez(tmp_path / "mlp-b1-savedmodel.npz", probabilities=good["probabilities"] + 1e-3)
    entries = [{"model": "mlp", "batch": 1, "runtime": r} for r in ("savedmodel", "torch_eager", "onnxruntime")]
    mismatches = parity.check(entries, tmp_path, Manifest(models={"mlp": BUILTINS["mlp"]}))
    by_runtime = {e["runtime"]: e for e in entries}
    assert by_runtime["torch_eager"]["max_abs_diff"] == 0.0
    assert by_runtime["onnxruntime"]["parity"] == "ok"
    assert by_runtime["savedmodel"]["parity"] == "mismatch"
    assert {e["reference"] for e in entries} == {"torch_eager"}
    assert len(mismatches) == 1
    assert mismatches[0].startswith("mlp batch 1 savedmodel: max abs diff 1.00e-03 from torch_eager")


def test_a_user_model_is_held_to_the_runtime_its_manifest_names() -> None:
    source = SourceInfo(format="onnx", files=("m.onnx",), sha256="0" * 64, reference="onnxruntime")
    user = BUILTINS["mlp"].model_copy(update={"origin": "user", "source": source})
    manifest = Manifest(models={"mlp": user})
    assert parity.reference_runtime("mlp", manifest, {"torchscript", "onnxruntime", "savedmodel"}) == "onnxruntime"
    assert parity.reference_runtime("mlp", manifest, {"savedmodel"}) == "savedmodel"
    assert parity.reference_runtime("mlp", None, {"tf_eager", "torch_eager"}) == "torch_eager"


def _train(framework: str, model: str, rate: float) -> dict[str, Any]:
    return {"framework": framework, "model": model, "samples_per_s": rate}


def test_training_claim_rules() -> None:
    rows = [
        _train("pytorch", "simplenn", 120),
        _train("tensorflow", "simplenn", 100),
        _train("pytorch", "dense784", 400),
        _train("tensorflow", "dense784", 100),
        _train("pytorch", "dynamic_rnn", 90),
        _train("tensorflow", "dynamic_rnn", 100),
    ]
    row = claims.training_claim(rows)
    assert row["verdict"] == "holds only for simplenn; PyTorch's edge on the dynamic GRU does not hold"
    assert "simplenn ×1.20" in row["measurement"]
    assert "dense784 ×4.00" in row["measurement"]
    assert claims.training_claim(rows[:2])["verdict"] == "holds"


def _infer(runtime: str, model: str, batch: int, p50: float, ok: bool = True) -> dict[str, Any]:
    return {"runtime": runtime, "model": model, "batch": batch, "p50_ms": p50, "parity": "ok" if ok else "mismatch"}


def test_inference_claim_counts_cells_and_ignores_mismatches() -> None:
    rows = [
        _infer("savedmodel", "mlp", 1, 1.0),
        _infer("torchscript", "mlp", 1, 2.0),
        _infer("savedmodel", "mlp", 8, 3.0),
        _infer("torchscript", "mlp", 8, 2.0),
        _infer("savedmodel", "mlp", 64, 1.0, ok=False),
        _infer("torchscript", "mlp", 64, 2.0),
    ]
    row = claims.inference_claim(rows)
    assert row["compared"] == 2
    assert row["tf_wins"] == ["mlp×1"]
    assert row["verdict"] == "holds only for batch cells mlp×1"
    assert claims.inference_claim(rows[:2])["verdict"] == "holds"
    assert claims.inference_claim(rows[2:4])["verdict"] == "does not hold"


def test_optimizations_and_gpu_claims() -> None:
    rows = [
        _infer("tf_eager", "mlp", 1, 10.0),
        _infer("tf_function", "mlp", 1, 1.0),
        _infer("torch_eager", "mlp", 1, 0.2),
        _infer("torchscript", "mlp", 1, 0.1),
    ]
    row = claims.optimizations_claim(rows, [])
    assert row["verdict"].startswith("holds only for the gain over each framework's own eager mode")
    assert "TF ×10.0" in row["measurement"]
    assert "PyTorch ×2.0" in row["measurement"]
    assert claims.gpu_claim(rows, "cpu", {})["verdict"] == "not measured (no GPU in this run)"
    gpu = [
        {
            **r,
            "framework": "pytorch",
            "gpu": {"gpu_util_mean_pct": 50.0, "gpu_util_max_pct": 60.0},
            "samples_per_s": 1000.0,
        }
        for r in rows[2:]
    ]
    verdict = claims.gpu_claim(gpu, "cuda", {"tensorflow": "tensorflow is not installed"})["verdict"]
    assert verdict == "not testable here: TensorFlow did not run on the GPU (tensorflow is not installed)"


def test_quick_plan_stays_within_its_bounds(artifacts_root: Path) -> None:
    """--quick: no ResNet, batches 1 and 64, few epochs, and a bounded amount of timed inference."""
    args = cli._parser().parse_args(["--quick", "--device", "cpu", "--artifacts", str(artifacts_root)])
    plan = cli.make_plan(args)
    assert plan.quick
    assert "resnet" not in plan.batches
    assert set(plan.batches) >= {"mlp", "digits"}
    assert all(b == [1, 64] for b in plan.batches.values())
    assert plan.runtimes == list(RUNTIMES)
    t = plan.training
    assert t.simplenn_epochs == 5  # the article's own program keeps its 5 epochs
    assert max(t.dense784_epochs, t.rnn_epochs) <= 3
    assert t.digits_epochs <= 20
    cells = sum(len(b) for b in plan.batches.values()) * len(plan.runtimes)
    assert cells * plan.timing.repeats * plan.timing.repeat_s <= 60.0  # timed windows, warm-up apart
    full = cli.make_plan(cli._parser().parse_args(["--device", "cpu", "--artifacts", str(artifacts_root)]))
    assert full.batches["resnet"] == [1, 8, 32]
    assert full.batches["mlp"] == [1, 8, 64, 256]
    assert Plan.from_json(full.to_json()) == full


def test_gpu_claim_with_both_frameworks() -> None:
    def gpu(framework: str, runtime: str, model: str, rate: float, util: float) -> dict[str, Any]:
        return {
            **_infer(runtime, model, 32, 1.0),
            "framework": framework,
            "samples_per_s": rate,
            "gpu": {"gpu_util_mean_pct": util, "gpu_util_max_pct": util},
        }

    rows = [
        gpu("pytorch", "torchscript", "resnet", 1000.0, 80.0),
        gpu("tensorflow", "savedmodel", "resnet", 900.0, 75.0),
        gpu("pytorch", "torchscript", "digits", 1000.0, 40.0),
        gpu("tensorflow", "tf_xla", "digits", 300.0, 10.0),
    ]
    assert claims.gpu_claim(rows[:2], "cuda", {})["verdict"] == "holds"
    assert claims.gpu_claim(rows[2:], "cuda", {})["verdict"] == "does not hold"
    mixed = claims.gpu_claim(rows, "cuda", {})
    assert mixed["verdict"] == "holds only for models resnet"  # 1 of 2: between a third and two thirds
    assert "tensorflow: digits×32 tf_xla 10 %" in mixed["measurement"]
