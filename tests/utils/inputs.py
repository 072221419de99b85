"""Seeded model inputs for tests."""

from __future__ import annotations

import numpy as np

from services.common.specs import get_spec


def random_batch(model: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` float32 instances of ``model`` drawn uniformly from the spec's value range."""
    spec = get_spec(model)
    low, high = spec.value_range
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(n, *spec.input_shape)).astype(np.float32)
