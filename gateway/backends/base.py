"""The one interface every backend client implements, and what a prediction returns."""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from contract.manifest import ModelEntry

from ..errors import BackendOverloadedError, BackendRejectedError, BadBackendResponseError
from ..payload import Payload

#: The members of an answer that carry tensors (TF Serving's row and columnar answers).
ANSWER_KEYS = ("predictions", "outputs")


@dataclass(frozen=True)
class BackendResult:
    """A backend's answer (``{"predictions": ...}`` or ``{"outputs": ...}``), its latency and its server.

    A binary request (:attr:`Payload.binary`) is answered with ``outputs`` (one array per
    output, not yet checked) and an empty ``answer``.
    """

    answer: dict[str, Any]
    latency_s: float
    server: str
    outputs: dict[str, np.ndarray] | None = None


@dataclass
class Readiness:
    """Whether a backend can serve a model now, and what it said."""

    ready: bool
    server: str
    detail: str = ""


class BackendClient(abc.ABC):
    """A pooled client for one backend, created in the app's lifespan and closed on shutdown.

    ``predict`` raises only :class:`~gateway.errors.BackendError` subclasses.
    """

    name: str

    @abc.abstractmethod
    async def predict(self, model: ModelEntry, payload: Payload) -> BackendResult:
        """Send ``payload`` for ``model``; the outputs are not yet checked against the contract."""

    @abc.abstractmethod
    async def ready(self, model: str) -> Readiness:
        """Whether ``model`` can be served; never raises."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the pool."""

    def describe(self) -> dict[str, Any]:
        """Static facts for ``/v1/models`` (URL, protocol, last server identity)."""
        return {}


def decode_json(raw: bytes, backend: str) -> Any:
    """A backend's JSON: orjson, and json for what orjson refuses (NaN, huge numbers), as before."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadBackendResponseError(f"backend {backend} answered non-JSON: {raw[:80]!r}", backend) from None


def answer_of(raw: bytes, backend: str) -> dict[str, Any]:
    """The tensors of a 200 answer (``predictions`` or ``outputs``), or 502."""
    data = decode_json(raw, backend)
    found = {k: data[k] for k in ANSWER_KEYS if k in data} if isinstance(data, dict) else {}
    if len(found) != 1:
        raise BadBackendResponseError(
            f"backend {backend} answered without predictions or outputs: {raw[:80]!r}", backend
        )
    return found


def error_message(raw: bytes) -> str:
    """The message of a TorchServe (``message``) or TF Serving (``error``) error body, else the text."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return raw[:200].decode("utf-8", "replace").strip()


def raise_for_status(status: int, raw: bytes, backend: str, retry_after_s: float) -> None:
    """Map a backend's non-200 answer onto the gateway's errors (see :mod:`gateway.errors`)."""
    if status == 200:
        return
    message = f"backend {backend} answered {status}: {error_message(raw)}"
    if status in (429, 503):
        raise BackendOverloadedError(message, backend, retry_after_s)
    if status in (400, 413, 422):
        raise BackendRejectedError(message, backend, status)
    raise BadBackendResponseError(message, backend)
