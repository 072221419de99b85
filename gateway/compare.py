"""How far several backends' outputs for the same input agree.

``max_abs_diff``: the largest absolute difference between any two backends' values of any
output. ``argmax_agreement``: the share of rows on which every backend picks the same class
in the model's first output; for a single value per row (``mlp``'s sigmoid) the class is
``output >= 0.5``.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

THRESHOLD = 0.5
Outputs = dict[str, np.ndarray]


def classes(outputs: np.ndarray) -> np.ndarray:
    """Predicted class per row: argmax, or the 0.5 threshold for one value."""
    rows = outputs.reshape(outputs.shape[0], -1)
    if rows.shape[1] == 1:
        return (rows[:, 0] >= THRESHOLD).astype(np.int64)
    picked: np.ndarray = np.argmax(rows, axis=1)
    return picked


def max_abs_diff(a: Outputs, b: Outputs) -> float:
    """The largest absolute difference over every output the two share."""
    diffs = [float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a if k in b and a[k].size]
    return max(diffs, default=0.0)


def agreement(outputs: dict[str, Outputs]) -> dict[str, Any]:
    """Overall and pairwise agreement of two or more backends' outputs (same names and shapes)."""
    names = list(outputs)
    if len(names) < 2:
        return {"max_abs_diff": None, "argmax_agreement": None, "pairs": []}
    first = next(iter(outputs[names[0]]))
    picked = {name: classes(outputs[name][first]) for name in names}
    pairs = [
        {
            "backends": [a, b],
            "max_abs_diff": max_abs_diff(outputs[a], outputs[b]),
            "argmax_agreement": float(np.mean(picked[a] == picked[b])),
        }
        for a, b in combinations(names, 2)
    ]
    stacked = np.stack([picked[n] for n in names])
    all_agree = np.all(stacked == stacked[0], axis=0)
    return {
        "max_abs_diff": max(float(p["max_abs_diff"]) for p in pairs),  # type: ignore[arg-type]
        "argmax_agreement": float(np.mean(all_agree)),
        "pairs": pairs,
    }
