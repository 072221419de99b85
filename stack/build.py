"""``make artifacts``: decide what is stale, rebuild only that, and write the manifest.

Each artifact is produced by a *stage* from some source files and from upstream
artifacts. Its *recipe key* is the hash of those sources plus the upstream artifacts'
hashes; the manifest stores both the recipe key and the artifact's own sha256. A stage
is rebuilt when its file is missing, its hash disagrees with the manifest (corrupt or
half-written), its recipe changed, or an upstream stage is being rebuilt.

The PyTorch stages run in one ``services.torch_api.export`` process and the SavedModels
in one ``services.tf_api.export`` process: the two frameworks never share a process,
and this module imports neither.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common import specs
from services.common.artifacts import (
    LAYOUT,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    TF_VERSION,
    ArtifactError,
    artifact_path,
    default_root,
    load_manifest,
    sha256_path,
    sha256_sources,
    write_json,
)

SERVICES = Path(__file__).resolve().parent
REPO = SERVICES.parent
_COMMON = [SERVICES / "common" / "specs.py", SERVICES / "common" / "artifacts.py"]
_TORCH_MODELS = [
    SERVICES / "torch_api" / "models.py",
    SERVICES / "torch_api" / "train.py",
    SERVICES / "common" / "data.py",
]
_TORCH_EXPORT = [SERVICES / "torch_api" / "export.py"]
_MAR = [
    SERVICES / "torch_api" / "handler.py",
    SERVICES / "torch_api" / "model-config.yaml",
    SERVICES / "common" / "validation.py",
]
_TF = [SERVICES / "tf_api" / "models.py", SERVICES / "tf_api" / "export.py", SERVICES / "common" / "data.py"]


@dataclass(frozen=True)
class Stage:
    """One artifact kind: which side builds it, from which sources and upstream kinds."""

    kind: str
    side: str  # "torch" or "tf"
    sources: tuple[Path, ...]
    inputs: tuple[str, ...] = ()


STAGES: tuple[Stage, ...] = (
    Stage("weights", "torch", tuple(_COMMON + _TORCH_MODELS)),
    Stage("torchscript", "torch", tuple(_COMMON + _TORCH_MODELS + _TORCH_EXPORT), ("weights",)),
    Stage("onnx", "torch", tuple(_COMMON + _TORCH_MODELS + _TORCH_EXPORT), ("weights",)),
    Stage("mar", "torch", tuple(_COMMON + _TORCH_EXPORT + _MAR), ("torchscript",)),
    Stage("mar_ort", "torch", tuple(_COMMON + _TORCH_EXPORT + _MAR), ("onnx",)),
    Stage("tf", "tf", tuple(_COMMON + _TF), ("weights",)),
)
STAGE_BY_KIND = {stage.kind: stage for stage in STAGES}
assert set(STAGE_BY_KIND) == set(LAYOUT), "every artifact kind needs a stage"


def _recipe(stage: Stage, model: str, upstream: dict[str, str]) -> str:
    return sha256_sources(list(stage.sources), [model, stage.kind, *(upstream[k] for k in stage.inputs)])


def _entry(manifest: dict[str, Any], model: str, kind: str) -> dict[str, Any]:
    try:
        entry = manifest["models"][model]["artifacts"][kind]
    except (KeyError, TypeError):
        return {}
    return entry if isinstance(entry, dict) else {}


def plan(root: Path, models: list[str], manifest: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The (model, kind, reason) jobs that must run, in build order."""
    jobs: list[tuple[str, str, str]] = []
    for model in models:
        stale: set[str] = set()
        shas: dict[str, str] = {}
        for stage in STAGES:
            path = artifact_path(root, model, stage.kind)
            entry = _entry(manifest, model, stage.kind)
            reason = ""
            if any(kind in stale for kind in stage.inputs):
                reason = "an input is rebuilt"
            elif not path.exists():
                reason = "missing"
            elif not entry:
                reason = "not in the manifest"
            else:
                shas[stage.kind] = sha256_path(path)
                if shas[stage.kind] != entry.get("sha256"):
                    reason = "hash disagrees with the manifest"
                elif entry.get("recipe") != _recipe(stage, model, shas):
                    reason = "sources changed"
            if reason:
                stale.add(stage.kind)
                jobs.append((model, stage.kind, reason))
    return jobs


def _run(cmd: list[str]) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(cmd, env=env, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"export failed: {' '.join(cmd)} exited with {result.returncode}")


def _record(root: Path, models: list[str], manifest: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """Hash what exists and write the manifest; artifacts not (yet) built are left out."""
    out: dict[str, Any] = {"format": MANIFEST_FORMAT, "models": dict(manifest.get("models", {}))}
    for model in models:
        spec = specs.get_spec(model)
        old = out["models"].get(model, {}) if isinstance(out["models"].get(model), dict) else {}
        entry: dict[str, Any] = {
            "description": spec.description,
            "input": {
                "name": spec.input_name,
                "shape": [None, *spec.input_shape],
                "dtype": spec.input_dtype,
                "value_range": list(spec.value_range),
            },
            "output": {"name": spec.output_name, "shape": [None, *spec.output_shape], "dtype": spec.output_dtype},
            "max_batch": spec.max_batch,
            "tf_signature": "serving_default",
            "tf_versions": [TF_VERSION],
            "metrics": {**old.get("metrics", {}), **metrics.get(model, {})},
            "artifacts": {},
        }
        shas: dict[str, str] = {}
        for stage in STAGES:
            path = artifact_path(root, model, stage.kind)
            if not path.exists() or any(k not in shas for k in stage.inputs):
                continue
            shas[stage.kind] = sha256_path(path)
            entry["artifacts"][stage.kind] = {
                "path": path.relative_to(root).as_posix(),
                "sha256": shas[stage.kind],
                "recipe": _recipe(stage, model, shas),
            }
        out["models"][model] = entry
    out["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_json(root / MANIFEST_NAME, out)
    return out


def build(root: Path, models: list[str]) -> dict[str, Any]:
    """Bring ``root`` up to date for ``models``; returns the new manifest."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(root, missing_ok=True)
    jobs = plan(root, models, manifest)
    if not jobs:
        print(f"artifacts: up to date ({', '.join(models)}) in {root}")
        return _record(root, models, manifest, {})
    for model, kind, reason in jobs:
        print(f"artifacts: {model} {kind}: rebuild ({reason})")
    # Forget the stale entries first: if a build dies half-way, nothing stale is trusted.
    for model, kind, _ in jobs:
        manifest.get("models", {}).get(model, {}).get("artifacts", {}).pop(kind, None)
    write_json(root / MANIFEST_NAME, {**manifest, "format": MANIFEST_FORMAT})
    metrics: dict[str, Any] = {}
    torch_jobs = [f"{m}:{k}" for m, k, _ in jobs if STAGE_BY_KIND[k].side == "torch"]
    if torch_jobs:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "metrics.json"
            cmd = [sys.executable, "-m", "services.torch_api.export", "--root", str(root), "--result", str(result)]
            for job in torch_jobs:
                cmd += ["--job", job]
            _run(cmd)
            import json

            metrics = json.loads(result.read_text())
        manifest = _record(root, models, manifest, metrics)
    tf_models = [m for m, k, _ in jobs if k == "tf"]
    if tf_models:
        cmd = [sys.executable, "-m", "services.tf_api.export", "--root", str(root)]
        for model in tf_models:
            cmd += ["--model", model]
        _run(cmd)
    manifest = _record(root, models, manifest, {})
    remaining = plan(root, models, manifest)
    if remaining:
        raise SystemExit(f"artifacts: still stale after the build: {remaining}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line for ``make artifacts``."""
    parser = argparse.ArgumentParser(description="Build duoserve's artifacts (only what is stale).")
    parser.add_argument("--root", type=Path, default=default_root(), help="artifacts directory")
    parser.add_argument("--model", action="append", choices=specs.MODEL_NAMES, help="default: all models")
    parser.add_argument("--check", action="store_true", help="only report what is stale; exit 1 if anything is")
    args = parser.parse_args(argv)
    models = args.model or list(specs.MODEL_NAMES)
    if args.check:
        try:
            manifest = load_manifest(args.root)
        except ArtifactError as exc:
            print(exc)
            return 1
        jobs = plan(args.root, models, manifest)
        for model, kind, reason in jobs:
            print(f"{artifact_path(args.root, model, kind)}: stale ({reason})")
        return 1 if jobs else 0
    manifest = build(args.root, models)
    for model in models:
        accuracy = manifest["models"][model]["metrics"].get("heldout_accuracy")
        extra = f", held-out accuracy {accuracy:.4f}" if accuracy is not None else ""
        print(f"artifacts: {model}: {len(manifest['models'][model]['artifacts'])} artifacts{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
