"""Is an answer right? A 200 with the wrong shape is a failure, not a success.

Each check takes the parsed JSON body and returns ``None`` when it is right, or a short
message saying what is wrong (Locust records it as the failure's text).
"""

from __future__ import annotations

import math
from typing import Any

#: Largest difference between two backends' outputs that still counts as agreement.
AGREEMENT_TOLERANCE = 1e-4


def _row_size(row: Any) -> int | None:
    """Number of finite numbers in a (possibly nested) row; None if anything else is in it."""
    if isinstance(row, bool):
        return None
    if isinstance(row, int | float):
        return 1 if math.isfinite(row) else None
    if isinstance(row, list):
        total = 0
        for item in row:
            size = _row_size(item)
            if size is None:
                return None
            total += size
        return total
    return None


def check_predictions(predictions: Any, rows: int, outputs: int) -> str | None:
    """``rows`` rows of ``outputs`` finite numbers each."""
    if not isinstance(predictions, list):
        return f"predictions is {type(predictions).__name__}, not a list"
    if len(predictions) != rows:
        return f"{len(predictions)} prediction rows for {rows} instances"
    for i, row in enumerate(predictions):
        size = _row_size(row)
        if size != outputs:
            return f"row {i} has {size if size is not None else 'non-numeric'} values, expected {outputs}"
    return None


def check_predict(body: Any, rows: int, outputs: int, backend: str | None = None) -> str | None:
    """A direct or gateway predict answer; for the gateway, also the backend that served it."""
    if not isinstance(body, dict) or "predictions" not in body:
        return "answer has no 'predictions'"
    if backend is not None and body.get("backend") != backend:
        return f"served by {body.get('backend')!r}, asked for {backend!r}"
    return check_predictions(body["predictions"], rows, outputs)


def check_compare(body: Any, rows: int, outputs: int, backends: list[str]) -> str | None:
    """Every backend answered with the right shape, and they agree within :data:`AGREEMENT_TOLERANCE`."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return "answer has no 'results'"
    seen = {str(r.get("backend")): r for r in body["results"] if isinstance(r, dict)}
    if sorted(seen) != sorted(backends):
        return f"compare answered for {sorted(seen)}, expected {sorted(backends)}"
    for name, result in seen.items():
        if result.get("error"):
            return f"{name} failed in compare: {result['error']}"
        problem = check_predictions(result.get("predictions"), rows, outputs)
        if problem:
            return f"{name}: {problem}"
    diff = body.get("max_abs_diff")
    if len(backends) > 1 and (not isinstance(diff, int | float) or not diff <= AGREEMENT_TOLERANCE):
        return f"max_abs_diff {diff} exceeds {AGREEMENT_TOLERANCE:g}"
    return None


def gate(requests: int, failures: int, p99_ms: float | None, max_fail_ratio: float, max_p99_ms: float) -> str | None:
    """Why a run fails its limits (fail ratio, and p99 when ``max_p99_ms`` > 0), or None."""
    if requests == 0:
        return "no requests were made"
    ratio = failures / requests
    if ratio > max_fail_ratio:
        return f"fail ratio {ratio:.2%} > {max_fail_ratio:.2%}"
    if max_p99_ms > 0 and p99_ms is not None and p99_ms > max_p99_ms:
        return f"p99 {p99_ms:g} ms > {max_p99_ms:g} ms"
    return None
