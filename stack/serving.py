"""The serving configuration a stack starts with: the shipped one, or a tuned file; its summary and hash.

Shipped: TorchServe's per-archive settings from ``services/torch_api/model-config.yaml``
(packed into each ``.mar``; Triton's repository takes the same window) and the TF server's
``services/tf_api/batching.config``. Tuned
(``python -m stack up --tuned FILE``, a :class:`contract.tuning.TunedConfig`): TorchServe
reads batchSize, maxBatchDelay and workers from inside the archive (they win over
``config.properties``), so the tuned archives are repacked with the tuned settings into
``$STACK_RUN_DIR/tuned/artifacts/`` beside hard links of the others, with a manifest of
their own; the TF server gets a ``batching.config`` with the tuned window, Triton the tuned file itself
(``TRITON_API_TUNED``: its repository is generated at start). The summary
(every archive's settings and the batching window) is hashed, so that every figure can
name the configuration that produced it and ``python -m loadtests compare`` can tell when
two runs differ.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from contract.artifacts import artifact_path, link_or_copy, sha256_path
from contract.manifest import Manifest, read_manifest
from contract.tuning import TfBatchingSettings, TunedConfig, TunedFileError
from services.tf_api.config import load_batching
from services.torch_api.settings import model_config
from services.triton_api.repository import Window, triton_models

_ARCHIVES = {"mar": "", "mar_ort": "_ort"}


def archive_settings(archive: str, tuned: TunedConfig | None = None) -> dict[str, Any]:
    """The ``model-config.yaml`` keys archive ``archive`` (``digits``, ``digits_ort``) is served with."""
    if tuned is not None and archive in tuned.torchserve:
        return tuned.torchserve[archive].model_config_keys()
    return model_config(archive.removesuffix("_ort"))


def batching_text(base: Path, window: TfBatchingSettings) -> str:
    """``base`` (a BatchingParameters text proto) with the tuned window's three fields replaced."""
    values = window.model_dump()
    lines = [
        line for line in base.read_text().splitlines() if line.split("{", 1)[0].strip() not in values and line.strip()
    ]
    lines = [line for line in lines if not line.lstrip().startswith("#")]
    lines.insert(0, "# duoserve tuned batching window (python -m loadtests tune); the rest as shipped")
    lines += [f"{name} {{ value: {value} }}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def summary(
    archives: list[str],
    batching_config: Path,
    tuned: TunedConfig | None,
    tuned_path: Path | None,
    triton: dict[str, Window] | None = None,
) -> dict[str, Any]:
    """What the stack serves with: every archive's settings, each Triton model's window (when Triton runs),
    the TF batching window, the tuned file."""
    batching = load_batching(batching_config)
    found: dict[str, Any] = {"torchserve": {a: archive_settings(a, tuned) for a in sorted(archives)}}
    if triton is not None:
        found["triton"] = {name: asdict(window) for name, window in sorted(triton.items())}
    return found | {
        "tf_batching": {
            "max_batch_size": batching.max_batch_size,
            "max_execution_batch_size": batching.max_execution_batch_size,
            "batch_timeout_micros": batching.batch_timeout_micros,
            "num_batch_threads": batching.num_batch_threads,
            "max_enqueued_batches": batching.max_enqueued_batches,
        },
        "tuned": str(tuned_path) if tuned_path else None,
    }


def config_hash(config: dict[str, Any]) -> str:
    """12 hex digits of the sha256 of the serving settings (the tuned file's path left out)."""
    settings = {k: v for k, v in config.items() if k != "tuned"}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def read_tuned(path: Path, manifest: Manifest) -> TunedConfig:
    """The tuned file, checked against the manifest; :class:`TunedFileError` in one line otherwise."""
    tuned = TunedConfig.read(path)
    if tuned.model not in manifest.models:
        raise TunedFileError(
            f"tuned file {path}: model {tuned.model!r} is not built (have: {', '.join(manifest.names)})"
        )
    known = {f"{m}{suffix}" for m in manifest.models for suffix in _ARCHIVES.values()}
    unknown = sorted(set(tuned.torchserve) - known)
    if unknown:
        raise TunedFileError(f"tuned file {path}: no TorchServe archive {', '.join(unknown)}")
    unknown = sorted(set(tuned.triton) - set(triton_models(manifest)))
    if unknown:
        raise TunedFileError(f"tuned file {path}: no Triton model {', '.join(unknown)}")
    return tuned


def materialize(tuned: TunedConfig, artifacts: Path, out: Path, batching_config: Path) -> tuple[Path, Path]:
    """Write the tuned archives (and links to the others) under ``out/artifacts`` and ``out/batching.config``.

    Returns (the artifacts root TorchServe starts from, the batching config the TF server reads).
    Repacking needs ``torch-model-archiver`` (the stack's venv has it); an archive whose
    tuned settings equal what it was packed with is linked, not repacked.
    """
    from services.torch_api.export import export_mar  # imports torch: only when a tuned file asks for it

    manifest = read_manifest(artifacts)
    root = out / "artifacts"
    variant = manifest.model_copy(deep=True)
    for name, entry in manifest.models.items():
        records = dict(entry.artifacts)
        for kind, suffix in _ARCHIVES.items():
            if kind not in entry.artifacts:
                continue
            archive = f"{name}{suffix}"
            target = artifact_path(root, name, kind)
            if archive in tuned.torchserve:
                export_mar(
                    artifacts, entry, ort=kind == "mar_ort", config=archive_settings(archive, tuned), out_root=root
                )
                records[kind] = entry.artifacts[kind].model_copy(
                    update={"sha256": sha256_path(target), "recipe": f"tuned:{tuned.model}"}
                )
            else:
                link_or_copy(artifact_path(artifacts, name, kind), target)
        variant.models[name] = entry.model_copy(update={"artifacts": records})
    variant.write(root / "manifest.json")
    batching = out / "batching.config"
    if tuned.tf is not None:
        batching.write_text(batching_text(batching_config, tuned.tf))
    else:
        shutil.copy2(batching_config, batching)
    load_batching(batching)  # refuse a window the TF server would refuse, before starting anything
    return root, batching
