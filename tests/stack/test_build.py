"""``make artifacts``: atomic writes, hashing and trust; a corrupt or stale artifact is named, then repaired."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contract import artifacts
from contract.artifacts import ArtifactError, artifact_path, atomic_dir, atomic_file
from contract.manifest import ArtifactRecord, Manifest, read_manifest
from contract.weights import load_weights
from stack import build as build_mod
from stack.builtins import BUILTIN_NAMES, BUILTINS

#: What a built-in model has (a brought model has its source and sample instead of weights)
BUILTIN_KINDS = [stage.kind for stage in build_mod.STAGES]


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


def test_manifest_describes_every_built_in_model(artifacts_root: Path, manifest: Manifest) -> None:
    assert set(manifest.models) >= set(BUILTIN_NAMES)
    for name in BUILTIN_NAMES:
        entry = manifest.model(name)
        assert entry.contract() == BUILTINS[name].contract()
        assert entry.origin == "builtin"
        assert [(t.name, t.dtype) for t in entry.inputs] == [("x", "float32")]
        assert [(t.name, t.dtype) for t in entry.outputs] == [("probabilities", "float32")]
        assert set(entry.artifacts) == set(BUILTIN_KINDS)
        for kind, record in entry.artifacts.items():
            assert manifest.verify(artifacts_root, name, kind) == artifact_path(artifacts_root, name, kind)
            assert set(record.sources) == set(build_mod.STAGE_BY_KIND[kind].sources)
    assert manifest.model("digits").metrics["heldout_accuracy"] >= 0.97
    assert build_mod.plan(artifacts_root, list(BUILTIN_NAMES), manifest) == []


def test_verify_names_the_file_that_disagrees(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    weights = tmp_path / "weights" / "mlp.npz"
    weights.write_bytes(b"abc")
    record = ArtifactRecord(path="weights/mlp.npz", sha256="0" * 64, recipe=artifacts.sha256_text("x"))
    manifest = Manifest(models={"mlp": BUILTINS["mlp"].model_copy(update={"artifacts": {"weights": record}})})
    with pytest.raises(ArtifactError, match=r"weights/mlp\.npz: sha256 .* disagrees with the manifest"):
        manifest.verify(tmp_path, "mlp", "weights")
    with pytest.raises(ArtifactError, match=r"torchscript/mlp\.pt: not listed"):
        manifest.verify(tmp_path, "mlp", "torchscript")
    weights.unlink()
    with pytest.raises(ArtifactError, match=r"weights/mlp\.npz: missing"):
        manifest.verify(tmp_path, "mlp", "weights")


def test_manifest_missing_corrupt_or_old_is_named(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"manifest\.json: missing; run `make artifacts`"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"manifest\.json: not a valid manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": 1, "models": {}}')
    with pytest.raises(ArtifactError, match=r"manifest\.json: format 1, not 2; run `make artifacts`"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path, missing_ok=True).models == {}


def test_corrupt_weights_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArtifactError, match=r"digits\.npz: weights file corrupt"):
        load_weights(path)
    with pytest.raises(ArtifactError, match=r"digits\.npz\.gone: weights file missing"):
        load_weights(tmp_path / "digits.npz.gone")


@pytest.mark.slow
def test_keras_side_names_a_corrupt_or_incomplete_weights_file(
    tmp_path: Path, artifacts_root: Path, manifest: Manifest
) -> None:
    import numpy as np

    from services.tf_api.models import build

    bad = tmp_path / "mlp.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match=r"mlp\.npz: weights file corrupt"):
        build(BUILTINS["mlp"], bad)
    arrays = load_weights(manifest.verify(artifacts_root, "mlp", "weights"))
    del arrays["fc2.bias"]
    np.savez(bad, **arrays)
    with pytest.raises(ArtifactError, match=r"mlp\.npz: weights file has no array 'fc2.bias'"):
        build(BUILTINS["mlp"], bad)


def _copy_mlp(artifacts_root: Path, root: Path, manifest: Manifest) -> None:
    for kind in BUILTIN_KINDS:
        src, dst = artifact_path(artifacts_root, "mlp", kind), artifact_path(root, "mlp", kind)
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    Manifest(models={"mlp": manifest.model("mlp")}).write(root / "manifest.json")


@pytest.mark.slow
def test_build_repairs_corrupt_interrupted_and_stale_artifacts(
    tmp_path: Path, artifacts_root: Path, manifest: Manifest
) -> None:
    root = tmp_path / "artifacts"
    _copy_mlp(artifacts_root, root, manifest)  # a full mlp build costs two framework start-ups
    assert build_mod.plan(root, ["mlp"], read_manifest(root)) == []

    # corrupt weights: named by verify, flagged by plan with everything downstream
    weights = artifact_path(root, "mlp", "weights")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"weights/mlp\.npz: sha256"):
        read_manifest(root).verify(root, "mlp", "weights")
    jobs = build_mod.plan(root, ["mlp"], read_manifest(root))
    assert jobs[0] == ("mlp", "weights", "its hash disagrees with the manifest (corrupt or half-written)")
    assert jobs[1] == ("mlp", "torchscript", "its input weights is rebuilt")
    assert [kind for _, kind, _ in jobs] == ["weights", "torchscript", "onnx", "mar", "mar_ort", "tf"]

    # an interrupted export: the SavedModel directory half gone, a temp file left behind
    shutil.rmtree(artifact_path(root, "mlp", "tf") / "variables")
    (root / "onnx" / ".mlp.onnx.abc.tmp").write_bytes(b"half")

    rebuilt = build_mod.build(root, ["mlp"])
    for kind in BUILTIN_KINDS:
        rebuilt.verify(root, "mlp", kind)
    assert build_mod.plan(root, ["mlp"], rebuilt) == []
    assert load_weights(weights).keys() == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_a_changed_source_names_itself_and_makes_only_its_stages_stale(
    tmp_path: Path, artifacts_root: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = "services/torch_api/handler.py"
    copy = tmp_path / "handler.py"
    copy.write_text((build_mod.REPO / handler).read_text() + "\n# changed\n")
    stages = tuple(
        build_mod.Stage(s.kind, s.side, tuple(str(copy) if p == handler else p for p in s.sources), s.inputs)
        for s in build_mod.STAGES
    )
    monkeypatch.setattr(build_mod, "STAGES", stages)
    jobs = build_mod.plan(artifacts_root, ["digits"], manifest)
    reason = f"sources changed: {copy}, {handler}"
    assert [(kind, why) for _, kind, why in jobs] == [("mar", reason), ("mar_ort", reason)]


def test_a_changed_contract_makes_every_stage_stale(
    artifacts_root: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(build_mod.BUILTINS, "mlp", BUILTINS["mlp"].model_copy(update={"max_batch": 7}))
    jobs = build_mod.plan(artifacts_root, ["mlp"], manifest)
    assert [kind for _, kind, _ in jobs] == BUILTIN_KINDS
    assert jobs[0][2] == "the model's inputs, outputs or max batch changed"


def test_check_lists_stale_artifacts(tmp_path: Path, artifacts_root: Path, manifest: Manifest) -> None:
    root = tmp_path / "artifacts"
    _copy_mlp(artifacts_root, root, manifest)
    assert build_mod.main(["--root", str(root), "--model", "mlp", "--check"]) == 0
    artifact_path(root, "mlp", "onnx").unlink()
    assert build_mod.main(["--root", str(root), "--model", "mlp", "--check"]) == 1
