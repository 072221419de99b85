"""The digits data split, and weights files, in framework-neutral form (numpy only)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from services.common.artifacts import ArtifactError

#: Seed of the held-out split; training never sees the test part.
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as (x_train, y_train, x_test, y_test), x float32 [N, 8, 8] in 0-16."""
    data = load_digits()
    images = data.images.astype(np.float32)
    labels = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels
    )
    return x_train, y_train, x_test, y_test


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """Read a neutral weights file; :class:`ArtifactError` names the file if it is missing or corrupt."""
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
