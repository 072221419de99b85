"""The Triton model repository is generated from the manifest: config.pbtxt from the contract, artifacts verified."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from contract.artifacts import ArtifactError, artifact_path
from contract.manifest import Manifest, read_manifest
from services.triton_api import repository
from services.triton_api.repository import (
    Window,
    config_text,
    default_window,
    triton_models,
    windows,
    write_repository,
)


def test_every_model_is_served_from_torch_and_from_onnx_under_torchserves_archive_names(manifest: Manifest) -> None:
    names = triton_models(manifest)
    for model, entry in manifest.models.items():
        assert names[model] == (model, "triton")
        assert names[f"{model}_ort"] == (model, "triton_ort")
        assert repository.artifact_kind(entry, "triton_ort") == "onnx"
        assert repository.artifact_kind(entry, "triton") in ("torchscript", "torch_export")


def test_a_model_without_onnx_has_no_ort_twin(manifest: Manifest) -> None:
    entry = manifest.model("mlp").model_copy(update={"missing": {"onnx": "converter refused"}})
    variant = manifest.model_copy(update={"models": {"mlp": entry}})
    assert triton_models(variant) == {"mlp": ("mlp", "triton")}
    assert entry.backends == ["torch", "triton", "tf"]


def test_config_takes_tensors_batch_and_window_from_the_contract(manifest: Manifest) -> None:
    entry = manifest.model("digits")
    window = default_window("digits")
    # TorchServe's window for digits (model-config.yaml): 16 requests, 1 ms, 2 workers
    assert window == Window(preferred_batch=16, max_queue_delay_us=1000, instances=2)
    text = config_text("digits", entry, "triton", window)
    (tensor,) = entry.inputs
    assert 'name: "digits"' in text
    assert 'backend: "python"' in text
    assert f"max_batch_size: {entry.max_batch}" in text
    assert f'{{ name: "{tensor.name}" data_type: TYPE_FP32 dims: [ 8, 8 ] }}' in text
    assert '{ name: "probabilities" data_type: TYPE_FP32 dims: [ 10 ] }' in text
    assert "dynamic_batching { preferred_batch_size: [ 16 ] max_queue_delay_microseconds: 1000 }" in text
    assert "instance_group [ { count: 2 kind: KIND_CPU } ]" in text
    assert '{ key: "artifact" value: { string_value: "model.pt" } }' in text
    assert '{ key: "intra_op_threads" value: { string_value: "1" } }' in text
    # resnet's window is its own: 8 requests, 5 ms, 1 worker; an explicit instance count wins
    assert default_window("resnet", instances=3) == Window(8, 5000, 3)


def test_a_per_row_scalar_makes_the_batch_axis_explicit_and_turns_batching_off(manifest: Manifest) -> None:
    # dynrnn's `lengths`: one int64 per row, shape []; Triton refuses empty dims on a batching model
    entry = manifest.model("digits")
    lengths = entry.inputs[0].model_copy(update={"name": "lengths", "dtype": "int64", "shape": []})
    scalar = entry.model_copy(update={"inputs": [*entry.inputs, lengths]})
    assert repository.batchable(entry)
    assert not repository.batchable(scalar)
    text = config_text("digits", scalar, "triton", default_window("digits"))
    assert "max_batch_size: 0" in text
    assert '{ name: "lengths" data_type: TYPE_INT64 dims: [ -1 ] }' in text
    assert f'{{ name: "{entry.inputs[0].name}" data_type: TYPE_FP32 dims: [ -1, 8, 8 ] }}' in text
    assert '{ name: "probabilities" data_type: TYPE_FP32 dims: [ -1, 10 ] }' in text
    assert "dynamic_batching" not in text


def test_a_config_triton_refuses_is_named_with_the_model() -> None:
    from services.triton_api.launcher import load_failures

    log = (
        'E1207 12:11:58.825744 6739 model_repository_manager.cc:1460] "Poll failed for model directory '
        "'dynrnn': model input 'lengths' must specify 'dims' for dynrnn\"\n"
        "E1207 12:11:59.1 6739 model_lifecycle.cc:654] \"failed to load 'mlp_ort' version 1: Invalid argument: "
        'unexpected inference output\\nTraceback"\n'
    )
    assert load_failures(log) == [
        "model dynrnn: model input 'lengths' must specify 'dims' for dynrnn",
        "model mlp_ort: Invalid argument: unexpected inference output",
    ]


def test_a_dynamic_axis_stays_minus_one_and_dtypes_follow_the_dtype_table(manifest: Manifest) -> None:
    from contract.manifest import TensorSpec

    entry = manifest.model("mlp").model_copy(
        update={
            "inputs": (
                TensorSpec(name="ids", dtype="int64", shape=(-1,), max_shape=(128,)),
                TensorSpec(name="mask", dtype="bool", shape=(-1,), max_shape=(128,)),
            ),
            "outputs": (TensorSpec(name="logits", dtype="float16", shape=(2,)),),
        }
    )
    text = config_text("m", entry, "triton", Window(4, 500, 1))
    assert '{ name: "ids" data_type: TYPE_INT64 dims: [ -1 ] }' in text
    assert '{ name: "mask" data_type: TYPE_BOOL dims: [ -1 ] }' in text
    assert '{ name: "logits" data_type: TYPE_FP16 dims: [ 2 ] }' in text
    # a preferred batch never exceeds what the model admits
    small = entry.model_copy(update={"max_batch": 2})
    assert "preferred_batch_size: [ 2 ]" in config_text("m", small, "triton", Window(16, 500, 1))


def test_the_image_serves_onnx_on_triton_onnxruntime_backend_and_torch_on_the_python_one(manifest: Manifest) -> None:
    entry = manifest.model("mlp")
    ort = config_text("mlp_ort", entry, "triton_ort", Window(16, 1000, 2), "image")
    assert 'platform: "onnxruntime_onnx"' in ort
    assert "backend:" not in ort
    assert "instance_group [ { count: 2 kind: KIND_GPU } ]" in ort
    assert '{ key: "intra_op_thread_count" value: { string_value: "1" } }' in ort
    torch = config_text("mlp", entry, "triton", Window(16, 1000, 2), "image")
    assert 'backend: "python"' in torch


def test_the_repository_holds_config_contract_artifact_and_model_py(
    artifacts_root: Path, manifest: Manifest, tmp_path: Path
) -> None:
    out = write_repository(manifest, artifacts_root, tmp_path / "repo", ["mlp", "mlp_ort"], windows(["mlp", "mlp_ort"]))
    assert sorted(p.name for p in out.iterdir()) == ["mlp", "mlp_ort"]
    files = ["__pycache__", "model.json", "model.pt", "model.py"]
    assert sorted(p.name for p in (out / "mlp" / "1").iterdir()) == files
    assert sorted(p.name for p in (out / "mlp_ort" / "1").iterdir()) == [*files[:2], "model.onnx", "model.py"]
    # model.py's bytecode is written with the repository, so Triton's stub finds it and writes none
    assert [p.name for p in (out / "mlp" / "1" / "__pycache__").iterdir()] == [
        f"model.{sys.implementation.cache_tag}.pyc"
    ]
    assert (out / "mlp" / "1" / "model.pt").read_bytes() == artifact_path(
        artifacts_root, "mlp", "torchscript"
    ).read_bytes()
    assert (out / "mlp" / "1" / "model.py").read_text() == repository.MODEL_PY.read_text()
    assert (
        read_manifest(artifacts_root).model("mlp").model_dump_json(indent=2) + "\n"
        == (out / "mlp" / "1" / "model.json").read_text()
    )
    image = write_repository(manifest, artifacts_root, tmp_path / "image", ["mlp_ort"], windows(["mlp_ort"]), "image")
    assert sorted(p.name for p in (image / "mlp_ort" / "1").iterdir()) == ["model.json", "model.onnx"]


def test_an_artifact_the_manifest_does_not_vouch_for_is_refused(
    artifacts_root: Path, manifest: Manifest, tmp_path: Path
) -> None:
    root = tmp_path / "artifacts"
    shutil.copytree(artifacts_root / "onnx", root / "onnx")
    shutil.copy2(artifacts_root / "manifest.json", root / "manifest.json")
    artifact_path(root, "mlp", "onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ArtifactError, match=r"onnx/mlp\.onnx: sha256 .* disagrees with the manifest"):
        write_repository(read_manifest(root), root, tmp_path / "repo", ["mlp_ort"], windows(["mlp_ort"]))


def test_a_tuned_window_wins_for_its_model_only() -> None:
    from contract.tuning import TritonSettings, TunedConfig

    tuned = TunedConfig(
        model="digits",
        batch=1,
        slo_ms=50,
        triton={"digits_ort": TritonSettings(instances=1, max_queue_delay_microseconds=500, preferred_batch_size=8)},
    )
    found = windows(["digits", "digits_ort"], tuned=tuned)
    assert found["digits_ort"] == Window(preferred_batch=8, max_queue_delay_us=500, instances=1)
    assert found["digits"] == default_window("digits")


def test_the_image_can_put_its_instances_on_the_cpu(manifest: Manifest) -> None:
    text = config_text("mlp_ort", manifest.model("mlp"), "triton_ort", Window(16, 1000, 2), "image", gpu=False)
    assert "instance_group [ { count: 2 kind: KIND_CPU } ]" in text
