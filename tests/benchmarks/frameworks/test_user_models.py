"""A user's model runs through the runtimes that need only its artifacts, learned from the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.frameworks import __main__ as cli
from benchmarks.frameworks.plan import FRAMEWORKS, Plan, Timing
from contract.manifest import SourceInfo, read_manifest

pytestmark = pytest.mark.slow

ARTIFACT_RUNTIMES = {"torchscript", "onnxruntime", "savedmodel"}
SOURCE_RUNTIMES = {"torch_eager", "torch_compile", "tf_eager", "tf_function", "tf_xla"}


def test_user_model_runs_on_artifact_runtimes_only(artifacts_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    for kind in ("weights", "torchscript", "onnx", "tf"):
        (root / kind).symlink_to(artifacts_root / kind, target_is_directory=True)
    manifest = read_manifest(artifacts_root)
    source = SourceInfo(format="onnx", files=("mlp.onnx",), sha256="0" * 64, reference="onnxruntime")
    manifest.models = {"mlp": manifest.model("mlp").model_copy(update={"origin": "user", "source": source})}
    manifest.write(root / "manifest.json")
    plan = Plan(
        device="cpu",
        threads=1,
        artifacts=str(root),
        batches={"mlp": [4]},
        training_models=[],
        timing=Timing(warmup_calls=1, repeats=1, repeat_s=0.0, min_calls=1, max_calls=1),
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "plan.json").write_text(json.dumps(plan.to_json()))
    results = [cli.run_worker(fw, work / "plan.json", work, tmp_path / "logs") for fw in FRAMEWORKS]
    combined = cli.combine(plan, results, work, (0.0, 0.0, 0.0))
    ran = {e["runtime"]: e for e in combined["inference"]}
    assert set(ran) == ARTIFACT_RUNTIMES
    for entry in ran.values():
        assert entry["reference"] == "onnxruntime"
        assert entry["parity"] == "ok", entry
    skipped = {s["what"]: s["reason"] for s in combined["skipped"]}
    assert set(skipped) == SOURCE_RUNTIMES
    for reason in skipped.values():
        assert reason.endswith("needs the network's source code; mlp is not a built-in model")
