"""Is an answer right? A 200 with the wrong shape is a failure, not a success.

Each check takes the parsed JSON body and returns ``None`` when it is right, or a short
message saying what is wrong (Locust records it as the failure's text). Shapes come from
the model's contract (:func:`contract.tensors.read_outputs`), as in the gateway.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from contract.manifest import ModelEntry
from contract.oip import read_rest_response
from contract.tensors import OutputError, read_outputs

#: Largest difference between two backends' outputs that still counts as agreement.
AGREEMENT_TOLERANCE = 1e-4


def check_outputs(answer: Any, entry: ModelEntry, rows: int) -> str | None:
    """The answer carries ``rows`` finite rows of every output of ``entry``."""
    try:
        outputs = read_outputs(answer, entry, rows)
    except OutputError as exc:
        return str(exc)
    for name, array in outputs.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return f"output {name} holds NaN or infinite values"
    return None


def check_predict(body: Any, entry: ModelEntry, rows: int, backend: str | None = None) -> str | None:
    """A direct or gateway predict answer; for the gateway, also the backend that served it."""
    if not isinstance(body, dict):
        return "answer is not a JSON object"
    if backend is not None and body.get("backend") != backend:
        return f"served by {body.get('backend')!r}, asked for {backend!r}"
    return check_outputs(body, entry, rows)


def check_v2(content: bytes, header: str | None, entry: ModelEntry, rows: int, backend: str | None) -> str | None:
    """An Open Inference Protocol answer (JSON or binary): every output, right shape, finite, from ``backend``
    (None: a server's own answer, Triton's, which names no backend)."""
    try:
        outputs = read_rest_response(content, header, entry, rows)
        served = json.loads(content if header is None else content[: int(header)]).get("parameters", {}).get("backend")
    except (OutputError, ValueError, AttributeError) as exc:
        return str(exc) or "answer is not the protocol's"
    if backend is not None and served != backend:
        return f"served by {served!r}, asked for {backend!r}"
    for name, array in outputs.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return f"output {name} holds NaN or infinite values"
    return None


def check_compare(body: Any, entry: ModelEntry, rows: int, backends: list[str]) -> str | None:
    """Every backend answered with the right shape, and they agree within :data:`AGREEMENT_TOLERANCE`."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return "answer has no 'results'"
    seen = {str(r.get("backend")): r for r in body["results"] if isinstance(r, dict)}
    if sorted(seen) != sorted(backends):
        return f"compare answered for {sorted(seen)}, expected {sorted(backends)}"
    for name, result in seen.items():
        if result.get("error"):
            return f"{name} failed in compare: {result['error']}"
        problem = check_outputs(result, entry, rows)
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
