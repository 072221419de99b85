"""``make artifacts``: decide what is stale, rebuild only that, and say why.

Each artifact is produced by a *stage* from source files, from the model's contract (its
inputs, outputs and max batch) and from upstream artifacts. Its *recipe key* hashes all
three; the manifest stores the recipe key, each source file's hash and the artifact's
own sha256. A stage is rebuilt when its file is missing, its hash disagrees with the
manifest (corrupt or half-written), its recipe changed (the message names the source
files that changed) or an upstream stage is being rebuilt.

Built-in models (:mod:`stack.builtins`) have every stage, from weights to SavedModel. A
model a user added (``duoserve models add``) keeps the artifacts its conversion made;
only its two TorchServe archives are stages here, so that a change to the handler or the
contract reaches them too. After every build ``tf/models.config`` lists every model with
a SavedModel, for TF Serving and the compatible server alike.

The PyTorch stages run in one ``services.torch_api.export`` process and the SavedModels
in one ``services.tf_api.export`` process: the two frameworks never share a process,
and this module imports neither.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contract import MAR_FILES
from contract.artifacts import (
    MANIFEST_NAME,
    TF_MODELS_CONFIG,
    artifact_path,
    atomic_file,
    default_root,
    sha256_path,
    sha256_text,
)
from contract.manifest import ArtifactRecord, Manifest, ModelEntry, read_manifest
from services.tf_api.config import render_models_config
from stack.builtins import BUILTIN_NAMES, BUILTINS

REPO = Path(__file__).resolve().parents[1]
_TORCH_MODEL = ("services/torch_api/models.py", "services/torch_api/train.py", "services/datasets.py")
_TORCH_EXPORT = ("services/torch_api/export.py",)
#: What a .mar carries besides the serialized model: the handler, its settings, and the contract package.
_MAR = (
    "services/torch_api/handler.py",
    "services/torch_api/model-config.yaml",
    *(f"contract/{file}" for file in MAR_FILES),
)
_TF = ("services/tf_api/models.py", "services/tf_api/export.py", "contract/weights.py")


@dataclass(frozen=True)
class Stage:
    """One artifact kind: which side builds it, from which sources and upstream kinds."""

    kind: str
    side: str  # "torch" or "tf"
    sources: tuple[str, ...]
    inputs: tuple[str, ...] = ()


STAGES: tuple[Stage, ...] = (
    Stage("weights", "torch", _TORCH_MODEL),
    Stage("torchscript", "torch", _TORCH_MODEL + _TORCH_EXPORT, ("weights",)),
    Stage("onnx", "torch", _TORCH_MODEL + _TORCH_EXPORT, ("weights",)),
    Stage("mar", "torch", _TORCH_EXPORT + _MAR, ("torchscript",)),
    Stage("mar_ort", "torch", _TORCH_EXPORT + _MAR, ("onnx",)),
    Stage("tf", "tf", _TF, ("weights",)),
)
STAGE_BY_KIND = {stage.kind: stage for stage in STAGES}


def torch_kind(entry: ModelEntry) -> str:
    """Which artifact TorchServe's ``torch`` backend serves: TorchScript, or a torch.export program."""
    return "torch_export" if "torch_export" in entry.artifacts else "torchscript"


def stages_of(entry: ModelEntry) -> tuple[Stage, ...]:
    """The stages that make ``entry``'s artifacts here (a user's model: only its archives)."""
    if entry.origin == "builtin":
        return STAGES
    stages = [Stage("mar", "torch", _TORCH_EXPORT + _MAR, (torch_kind(entry),))]
    if "onnx" not in entry.missing:
        stages.append(Stage("mar_ort", "torch", _TORCH_EXPORT + _MAR, ("onnx",)))
    return tuple(stages)


def source_hashes(stage: Stage) -> dict[str, str]:
    """Each source file of ``stage`` (repository-relative) -> its sha256."""
    return {path: sha256_path(REPO / path) for path in stage.sources}


def recipe(stage: Stage, entry: ModelEntry, sources: dict[str, str], upstream: dict[str, str]) -> str:
    """The recipe key: stage, model contract, sources and upstream artifacts' hashes."""
    return sha256_text(
        stage.kind,
        json.dumps(entry.contract(), sort_keys=True),
        *(f"{path}:{sha}" for path, sha in sorted(sources.items())),
        *(upstream[k] for k in stage.inputs),
    )


def record(root: Path, entry: ModelEntry, stage: Stage, upstream: dict[str, str]) -> ArtifactRecord:
    """The manifest record of a stage's artifact as it is on disk now."""
    path = artifact_path(root, entry.name, stage.kind)
    sources = source_hashes(stage)
    return ArtifactRecord(
        path=path.relative_to(root).as_posix(),
        sha256=sha256_path(path),
        recipe=recipe(stage, entry, sources, upstream),
        sources=sources,
    )


def _changed(old: dict[str, str], new: dict[str, str]) -> str:
    names = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
    return ", ".join(names)


def _wanted(model: str, manifest: Manifest) -> ModelEntry:
    """The entry a model should have: a built-in's from the code, a user's from the manifest."""
    if model in BUILTINS:
        return BUILTINS[model]
    return manifest.model(model)


def plan(root: Path, models: list[str], manifest: Manifest) -> list[tuple[str, str, str]]:
    """The (model, kind, reason) jobs that must run, in build order."""
    jobs: list[tuple[str, str, str]] = []
    for model in models:
        contract = _wanted(model, manifest)
        old_entry = manifest.models.get(model)
        contract_changed = old_entry is not None and old_entry.contract() != contract.contract()
        stages = stages_of(old_entry or contract)
        stale: set[str] = set()
        shas = _kept_hashes(root, old_entry, stages)
        for stage in stages:
            path = artifact_path(root, model, stage.kind)
            old = old_entry.artifacts.get(stage.kind) if old_entry else None
            sources = source_hashes(stage)
            reason = ""
            if stale.intersection(stage.inputs):
                reason = f"its input {', '.join(sorted(stale.intersection(stage.inputs)))} is rebuilt"
            elif not path.exists():
                reason = "missing"
            elif old is None:
                reason = "not in the manifest"
            else:
                shas[stage.kind] = sha256_path(path)
                if shas[stage.kind] != old.sha256:
                    reason = "its hash disagrees with the manifest (corrupt or half-written)"
                elif old.recipe != recipe(stage, contract, sources, shas):
                    changed = _changed(old.sources, sources)
                    if changed:
                        reason = f"sources changed: {changed}"
                    elif contract_changed:
                        reason = "the model's inputs, outputs or max batch changed"
                    else:
                        reason = "its recipe changed"
            if reason:
                stale.add(stage.kind)
                jobs.append((model, stage.kind, reason))
    return jobs


def _kept_hashes(root: Path, entry: ModelEntry | None, stages: tuple[Stage, ...]) -> dict[str, str]:
    """The recorded hashes of a user's model's artifacts that no stage here makes (its conversion's)."""
    if entry is None or entry.origin == "builtin":
        return {}
    made = {s.kind for s in stages}
    return {kind: r.sha256 for kind, r in entry.artifacts.items() if kind not in made}


def _run(cmd: list[str]) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(cmd, env=env, cwd=REPO, check=False)
    if result.returncode != 0:
        raise SystemExit(f"export failed: {' '.join(cmd)} exited with {result.returncode}")


def _record(
    root: Path, models: list[str], manifest: Manifest, done: set[tuple[str, str]], metrics: dict[str, dict[str, float]]
) -> Manifest:
    """Hash what is trusted (kept, or built in this run) and write the manifest; the rest is left out."""
    for model in models:
        old = manifest.models.get(model)
        wanted = _wanted(model, manifest)
        stages = stages_of(old or wanted)
        made = {s.kind for s in stages}
        kept = {k: r for k, r in (old.artifacts if old else {}).items() if k not in made}
        entry = wanted.model_copy(
            update={"metrics": {**(old.metrics if old else {}), **metrics.get(model, {})}, "artifacts": kept}
        )
        shas = {k: r.sha256 for k, r in kept.items()}
        for stage in stages:
            path = artifact_path(root, model, stage.kind)
            trusted = (old is not None and stage.kind in old.artifacts) or (model, stage.kind) in done
            if not path.exists() or not trusted or any(k not in shas for k in stage.inputs):
                continue
            entry.artifacts[stage.kind] = record(root, entry, stage, shas)
            shas[stage.kind] = entry.artifacts[stage.kind].sha256
        manifest.models[model] = entry
    manifest.write(root / MANIFEST_NAME)
    return manifest


def write_models_config(root: Path, manifest: Manifest) -> Path:
    """``tf/models.config``: every model that has a SavedModel, by name, as TF Serving reads it.

    Sorted, so the file does not depend on the order a manifest was written in (``build``
    keeps insertion order, ``models add`` writes sorted keys)."""
    path = root / TF_MODELS_CONFIG
    with atomic_file(path) as tmp:
        tmp.write_text(render_models_config(sorted(name for name, e in manifest.models.items() if "tf" in e.artifacts)))
    return path


def build(root: Path, models: list[str]) -> Manifest:
    """Bring ``root`` up to date for ``models``; returns the new manifest."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / MANIFEST_NAME
    manifest = read_manifest(root, missing_ok=True)
    if path.exists() and not manifest.models:
        print(f"artifacts: {path} is not a format-{manifest.format} manifest (an older layout); rebuilding it")
    jobs = plan(root, models, manifest)
    if not jobs:
        print(f"artifacts: up to date ({', '.join(models)}) in {root}")
        write_models_config(root, manifest)
        return manifest
    for model, kind, reason in jobs:
        print(f"artifacts: {model} {kind}: rebuild ({reason})")
    # Forget the stale entries first: if a build dies half-way, nothing stale is trusted; the
    # exporters read each model's contract from the manifest.
    stale = {(m, k) for m, k, _ in jobs}
    for model in models:
        old = manifest.models.get(model)
        kept = {k: v for k, v in (old.artifacts if old else {}).items() if (model, k) not in stale}
        manifest.models[model] = _wanted(model, manifest).model_copy(
            update={"metrics": old.metrics if old else {}, "artifacts": kept}
        )
    manifest.write(path)
    done: set[tuple[str, str]] = set()
    metrics: dict[str, dict[str, float]] = {}
    torch_jobs = [(m, k) for m, k, _ in jobs if k != "tf"]
    if torch_jobs:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "metrics.json"
            cmd = [sys.executable, "-m", "services.torch_api.export", "--root", str(root), "--result", str(result)]
            for model, kind in torch_jobs:
                cmd += ["--job", f"{model}:{kind}"]
            _run(cmd)
            metrics = json.loads(result.read_text())
        done.update(torch_jobs)
        manifest = _record(root, models, manifest, done, metrics)
    tf_jobs = [(m, k) for m, k, _ in jobs if k == "tf"]
    if tf_jobs:
        cmd = [sys.executable, "-m", "services.tf_api.export", "--root", str(root)]
        for model, _ in tf_jobs:
            cmd += ["--model", model]
        _run(cmd)
        done.update(tf_jobs)
    manifest = _record(root, models, manifest, done, metrics)
    write_models_config(root, manifest)
    remaining = plan(root, models, manifest)
    if remaining:
        raise SystemExit(f"artifacts: still stale after the build: {remaining}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Command line for ``make artifacts``."""
    parser = argparse.ArgumentParser(
        prog="python -m stack.build", description="Build duoserve's artifacts (only what is stale)."
    )
    parser.add_argument("--root", type=Path, default=default_root(), help="artifacts directory")
    parser.add_argument("--model", action="append", help="default: every built-in model and every added one")
    parser.add_argument("--check", action="store_true", help="only report what is stale; exit 1 if anything is")
    args = parser.parse_args(argv)
    manifest = read_manifest(args.root, missing_ok=True)
    models = args.model or list(dict.fromkeys([*BUILTIN_NAMES, *manifest.models]))
    unknown = [m for m in models if m not in BUILTINS and m not in manifest.models]
    if unknown:
        parser.error(
            f"unknown model(s) {unknown}; built-in: {', '.join(BUILTIN_NAMES)}; added: {sorted(manifest.models)}"
        )
    if args.check:
        jobs = plan(args.root, models, manifest)
        for model, kind, reason in jobs:
            print(f"{artifact_path(args.root, model, kind)}: stale ({reason})")
        return 1 if jobs else 0
    manifest = build(args.root, models)
    for model in models:
        entry = manifest.models[model]
        accuracy = entry.metrics.get("heldout_accuracy")
        extra = f", held-out accuracy {accuracy:.4f}" if accuracy is not None else ""
        print(f"artifacts: {model}: {len(entry.artifacts)} artifacts{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
