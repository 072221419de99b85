"""A backend's checked answer, and the checks that make one (502 naming what was wrong)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.manifest import ModelEntry
from contract.tensors import OutputError, check_output_arrays, read_outputs

from .backends import BackendResult
from .errors import BadBackendResponseError


@dataclass(frozen=True)
class Answer:
    """One backend's checked answer: its JSON as the caller gets it, and the outputs as arrays."""

    backend: str
    answer: dict[str, Any]
    outputs: dict[str, np.ndarray]
    latency_s: float
    server: str


def check_answer(answer: dict[str, Any], model: ModelEntry, rows: int, backend: str) -> dict[str, np.ndarray]:
    """The outputs of a backend's answer, checked against the model's contract, or 502 saying what was wrong."""
    try:
        return read_outputs(answer, model, rows)
    except OutputError as exc:
        raise BadBackendResponseError(f"backend {backend} answered badly: {exc}", backend) from None


def check_result(result: BackendResult, model: ModelEntry, rows: int, backend: str) -> dict[str, np.ndarray]:
    """:func:`check_answer`, or the same check of the arrays a binary answer carries."""
    if result.outputs is None:
        return check_answer(result.answer, model, rows, backend)
    try:
        return check_output_arrays(result.outputs, model, rows)
    except OutputError as exc:
        raise BadBackendResponseError(f"backend {backend} answered badly: {exc}", backend) from None
