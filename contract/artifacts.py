"""Where artifacts live, how they are written, and how a consumer knows it can trust one.

Every artifact is written atomically (a temporary sibling, then ``os.replace``), so a
crash leaves either the old artifact or the new one, never half of one. The manifest
(``artifacts/manifest.json``, :mod:`contract.manifest`) is written last and records each
artifact's sha256; a file whose hash disagrees with the manifest is not trusted
(:func:`contract.manifest.Manifest.verify`) and is rebuilt by the next ``make artifacts``.
Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
#: Version directory every SavedModel is exported under (TF Serving's layout).
TF_VERSION = 1

#: Artifact kind -> path of model ``{m}`` relative to the artifacts root. A built-in model has
#: weights (made in PyTorch); a user's model has its source (the files it was brought as) and,
#: optionally, the inputs it was checked with; the rest every model has, TorchScript or a
#: torch.export program for TorchServe's ``torch`` backend.
LAYOUT: dict[str, str] = {
    "weights": "weights/{m}.npz",
    "source": "sources/{m}",
    "sample": "samples/{m}.npz",
    "torchscript": "torchscript/{m}.pt",
    "torch_export": "torchexport/{m}.pt2",
    "onnx": "onnx/{m}.onnx",
    "mar": "model-store/{m}.mar",
    "mar_ort": "model-store/{m}_ort.mar",
    "tf": "tf/{m}/" + str(TF_VERSION),
}
#: TF Serving's model_config_list for every model with a SavedModel, written beside them (tf/ is
#: what TF Serving mounts as /models).
TF_MODELS_CONFIG = "tf/models.config"


class ArtifactError(RuntimeError):
    """An artifact is missing, corrupt, or disagrees with the manifest; the message names the file."""


def default_root() -> Path:
    """The artifacts root: ``$DUOSERVE_ARTIFACTS`` or ``artifacts/`` in the repository."""
    env = os.environ.get("DUOSERVE_ARTIFACTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "artifacts"


def artifact_path(root: Path, model: str, kind: str) -> Path:
    """Path of ``kind`` (a key of :data:`LAYOUT`) for ``model`` under ``root``."""
    return root / LAYOUT[kind].format(m=model)


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a directory tree (relative names and contents, in sorted order)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            _update_from_file(digest, item)
    elif path.is_file():
        _update_from_file(digest, path)
    else:
        raise ArtifactError(f"{path}: missing")
    return digest.hexdigest()


def _update_from_file(digest: Any, path: Path) -> None:
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def sha256_text(*parts: str) -> str:
    """sha256 of some strings (a recipe key is the hash of its sources' hashes and settings)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp makes 0600; servers may run as another user
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it takes ``path``'s place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = path.with_name(f".{path.name}.old")
    try:
        yield tmp
        tmp.chmod(0o755)
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link of the file ``source`` (a copy across file systems), replacing any file there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_json(path: Path, data: object) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
