"""Request bodies: one seeded generator, so every target gets byte-identical requests.

A body depends only on (manifest entry of the model, batch size, seed, index): the same
inputs give the same bytes in every process, on every worker, for every target. Shapes
and value ranges come from ``artifacts/manifest.json``, never from code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.common.artifacts import default_root, load_manifest

#: Decimals kept per value: short bodies, and float32 holds them exactly enough.
DECIMALS = 3


@dataclass(frozen=True)
class ModelInput:
    """What one instance of a model looks like (from the manifest)."""

    model: str
    shape: tuple[int, ...]
    low: float
    high: float
    max_batch: int
    outputs: tuple[int, ...]

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], model: str) -> ModelInput:
        """Read ``model``'s input shape, value range, max batch and output shape."""
        try:
            entry = manifest["models"][model]
        except KeyError:
            known = ", ".join(sorted(manifest.get("models", {})))
            raise KeyError(f"model {model!r} is not in the manifest; known: {known}") from None
        low, high = entry["input"]["value_range"]
        return cls(
            model=model,
            shape=tuple(int(d) for d in entry["input"]["shape"][1:]),
            low=float(low),
            high=float(high),
            max_batch=int(entry["max_batch"]),
            outputs=tuple(int(d) for d in entry["output"]["shape"][1:]),
        )


def load_input(model: str, root: Path | None = None) -> ModelInput:
    """The :class:`ModelInput` of ``model`` from ``root/manifest.json`` (default: the artifacts root)."""
    return ModelInput.from_manifest(load_manifest(root or default_root()), model)


def instances(spec: ModelInput, batch: int, seed: int, index: int = 0) -> np.ndarray:
    """``batch`` instances drawn uniformly from the model's value range, rounded to :data:`DECIMALS`."""
    if not 1 <= batch <= spec.max_batch:
        raise ValueError(f"batch {batch} outside 1..{spec.max_batch} for model {spec.model}")
    rng = np.random.default_rng([seed, index, batch])
    data = rng.uniform(spec.low, spec.high, size=(batch, *spec.shape))
    return np.round(data, DECIMALS).astype(np.float64)


def body(spec: ModelInput, batch: int, seed: int, index: int = 0) -> bytes:
    """The JSON request body ``{"instances": [...]}`` (compact, deterministic bytes)."""
    return json.dumps({"instances": instances(spec, batch, seed, index).tolist()}, separators=(",", ":")).encode()


def pool(spec: ModelInput, batch: int, seed: int, size: int) -> list[bytes]:
    """``size`` distinct bodies; users cycle through them so caches cannot flatter a server."""
    return [body(spec, batch, seed, i) for i in range(size)]
