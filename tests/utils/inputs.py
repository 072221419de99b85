"""Seeded model inputs for tests, from the built-in models' contracts."""

from __future__ import annotations

import numpy as np

from contract.tensors import sample_inputs
from stack.builtins import BUILTINS


def random_batch(model: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` instances of a built-in model's single input, drawn from its contract's value range."""
    entry = BUILTINS[model]
    return sample_inputs(entry, n, seed)[entry.input_names[0]]
