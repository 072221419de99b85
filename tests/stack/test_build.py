"""Atomic writes, hashing, and trust: a corrupt or stale artifact is named, then repaired."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from services import build as build_mod
from services.common import artifacts
from services.common.artifacts import ArtifactError, artifact_path, atomic_dir, atomic_file, verify
from services.common.data import load_weights
from services.common.specs import MODEL_NAMES, get_spec


def test_atomic_file_leaves_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_file_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.bin"
    with atomic_file(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_atomic_dir_swaps_whole_tree(tmp_path: Path) -> None:
    target = tmp_path / "model" / "1"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("one")
    with pytest.raises(KeyError), atomic_dir(target) as tmp:
        (tmp / "y").write_text("half")
        raise KeyError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["x"]
    with atomic_dir(target) as tmp:
        (tmp / "z").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["z"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["1"]


def test_sha256_of_directory_depends_on_names_and_contents(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    first = artifacts.sha256_path(tmp_path)
    (tmp_path / "a").rename(tmp_path / "b")
    assert artifacts.sha256_path(tmp_path) != first
    with pytest.raises(ArtifactError, match="missing"):
        artifacts.sha256_path(tmp_path / "nope")


def test_manifest_describes_every_model(artifacts_root: Path, manifest: dict[str, Any]) -> None:
    assert set(manifest["models"]) == set(MODEL_NAMES)
    for name in MODEL_NAMES:
        spec = get_spec(name)
        entry = manifest["models"][name]
        assert entry["input"] == {
            "name": "x",
            "shape": [None, *spec.input_shape],
            "dtype": "float32",
            "value_range": list(spec.value_range),
        }
        assert entry["output"] == {"name": "probabilities", "shape": [None, *spec.output_shape], "dtype": "float32"}
        assert entry["max_batch"] == spec.max_batch
        assert set(entry["artifacts"]) == set(artifacts.LAYOUT)
        for kind in artifacts.LAYOUT:
            assert verify(artifacts_root, name, kind, manifest) == artifact_path(artifacts_root, name, kind)
    assert build_mod.plan(artifacts_root, list(MODEL_NAMES), manifest) == []


def test_verify_names_the_file_that_disagrees(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    weights = tmp_path / "weights" / "mlp.npz"
    weights.write_bytes(b"abc")
    manifest = {"format": 1, "models": {"mlp": {"artifacts": {"weights": {"sha256": "0" * 64}}}}}
    with pytest.raises(ArtifactError, match=r"weights/mlp\.npz: sha256 .* disagrees with the manifest"):
        verify(tmp_path, "mlp", "weights", manifest)
    with pytest.raises(ArtifactError, match=r"torchscript/mlp\.pt: not listed"):
        verify(tmp_path, "mlp", "torchscript", manifest)
    weights.unlink()
    with pytest.raises(ArtifactError, match=r"weights/mlp\.npz: missing"):
        verify(tmp_path, "mlp", "weights", manifest)


def test_manifest_missing_or_corrupt_is_named(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"manifest\.json: missing; run `make artifacts`"):
        artifacts.load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"manifest\.json: unreadable"):
        artifacts.load_manifest(tmp_path)
    assert artifacts.load_manifest(tmp_path, missing_ok=True)["models"] == {}


def test_corrupt_weights_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArtifactError, match=r"digits\.npz: weights file corrupt"):
        load_weights(path)
    with pytest.raises(ArtifactError, match=r"digits\.npz\.gone: weights file missing"):
        load_weights(tmp_path / "digits.npz.gone")


@pytest.mark.slow
def test_keras_side_names_a_corrupt_or_incomplete_weights_file(tmp_path: Path, artifacts_root: Path) -> None:
    import numpy as np

    from services.tf_api.models import build

    bad = tmp_path / "mlp.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match=r"mlp\.npz: weights file corrupt"):
        build("mlp", bad)
    arrays = load_weights(verify(artifacts_root, "mlp", "weights"))
    del arrays["fc2.bias"]
    np.savez(bad, **arrays)
    with pytest.raises(ArtifactError, match=r"mlp\.npz: weights file has no array 'fc2.bias'"):
        build("mlp", bad)


@pytest.mark.slow
def test_build_repairs_corrupt_interrupted_and_stale_artifacts(tmp_path: Path, artifacts_root: Path) -> None:
    root = tmp_path / "artifacts"
    # start from the real mlp artifacts (a full mlp build costs two framework start-ups)
    for kind in artifacts.LAYOUT:
        src, dst = artifact_path(artifacts_root, "mlp", kind), artifact_path(root, "mlp", kind)
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    real = json.loads((artifacts_root / "manifest.json").read_text())
    artifacts.write_json(root / "manifest.json", {"format": 1, "models": {"mlp": real["models"]["mlp"]}})
    assert build_mod.plan(root, ["mlp"], artifacts.load_manifest(root)) == []

    # corrupt weights: named by verify, flagged by plan with everything downstream
    weights = artifact_path(root, "mlp", "weights")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"weights/mlp\.npz: sha256"):
        verify(root, "mlp", "weights")
    jobs = build_mod.plan(root, ["mlp"], artifacts.load_manifest(root))
    assert jobs[0] == ("mlp", "weights", "hash disagrees with the manifest")
    assert [kind for _, kind, _ in jobs] == ["weights", "torchscript", "onnx", "mar", "mar_ort", "tf"]

    # an interrupted export: the SavedModel directory half gone, a temp file left behind
    shutil.rmtree(artifact_path(root, "mlp", "tf") / "variables")
    (root / "onnx" / ".mlp.onnx.abc.tmp").write_bytes(b"half")

    manifest = build_mod.build(root, ["mlp"])
    for kind in artifacts.LAYOUT:
        verify(root, "mlp", kind, manifest)
    assert build_mod.plan(root, ["mlp"], manifest) == []
    assert load_weights(weights).keys() == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_source_change_makes_stage_stale(tmp_path: Path, artifacts_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = artifacts.load_manifest(artifacts_root)
    handler_copy = tmp_path / "handler.py"
    handler_copy.write_text(build_mod._MAR[0].read_text() + "\n# changed\n")
    stages = tuple(
        build_mod.Stage(
            s.kind, s.side, tuple(handler_copy if p == build_mod._MAR[0] else p for p in s.sources), s.inputs
        )
        for s in build_mod.STAGES
    )
    monkeypatch.setattr(build_mod, "STAGES", stages)
    jobs = build_mod.plan(artifacts_root, ["digits"], manifest)
    assert [(kind, reason) for _, kind, reason in jobs] == [("mar", "sources changed"), ("mar_ort", "sources changed")]
