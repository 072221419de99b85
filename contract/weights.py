"""The neutral weights file (``.npz`` of a PyTorch ``state_dict``): the only thing the two frameworks share.

PyTorch writes it, Keras reads it (``services/tf_api/models.py`` converts the layouts);
numpy only, so neither side imports the other's framework.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .artifacts import ArtifactError


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """Read a weights file; :class:`ArtifactError` names the file if it is missing or corrupt."""
    if not path.is_file():
        raise ArtifactError(f"{path}: weights file missing; run `make artifacts`")
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, AttributeError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{path}: weights file corrupt ({exc}); run `make artifacts`") from exc


def require(weights: dict[str, np.ndarray], key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """``weights[key]`` checked for presence and shape; :class:`ArtifactError` names file and key."""
    if key not in weights:
        raise ArtifactError(f"{path}: weights file has no array {key!r}")
    array = weights[key]
    if tuple(array.shape) != shape:
        raise ArtifactError(f"{path}: array {key!r} has shape {tuple(array.shape)}, expected {shape}")
    return array.astype(np.float32, copy=False)
