"""How far several backends' predictions for the same input agree.

``max_abs_diff``: the largest absolute difference between any two backends' outputs.
``argmax_agreement``: the share of rows on which every backend picks the same class;
for a single-output model (``mlp``'s sigmoid) the class is ``output >= 0.5``.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

THRESHOLD = 0.5


def classes(outputs: np.ndarray) -> np.ndarray:
    """Predicted class per row: argmax, or the 0.5 threshold for one output."""
    rows = outputs.reshape(outputs.shape[0], -1)
    if rows.shape[1] == 1:
        return (rows[:, 0] >= THRESHOLD).astype(np.int64)
    picked: np.ndarray = np.argmax(rows, axis=1)
    return picked


def agreement(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Overall and pairwise agreement of two or more same-shaped output arrays."""
    names = list(outputs)
    if len(names) < 2:
        return {"max_abs_diff": None, "argmax_agreement": None, "pairs": []}
    picked = {name: classes(outputs[name]) for name in names}
    pairs = []
    for a, b in combinations(names, 2):
        pairs.append(
            {
                "backends": [a, b],
                "max_abs_diff": float(np.max(np.abs(outputs[a] - outputs[b]))),
                "argmax_agreement": float(np.mean(picked[a] == picked[b])),
            }
        )
    stacked = np.stack([picked[n] for n in names])
    all_agree = np.all(stacked == stacked[0], axis=0)
    return {
        "max_abs_diff": max(float(p["max_abs_diff"]) for p in pairs),  # type: ignore[arg-type]
        "argmax_agreement": float(np.mean(all_agree)),
        "pairs": pairs,
    }


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)))
