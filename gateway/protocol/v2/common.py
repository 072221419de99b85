"""What the v2 REST and gRPC adapters share: metadata, versions, errors, and one inference.

An inference is: a checked :class:`~contract.oip.InferRequest` becomes a binary
:class:`~gateway.payload.Payload` (the arrays, plus the protocol's binary layout for
TorchServe's handler), the data plane routes and calls it like a ``/v1`` predict, and
the request is counted in the same stats and metrics (:meth:`DataPlane.request`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from contract.manifest import ModelEntry
from contract.oip import BINARY_EXTENSION, InferRequest, datatype, metadata_shape, rest_request
from contract.tensors import InputError

from ...dataplane import Answer, DataPlane
from ...errors import GatewayError, InvalidInputError, PayloadTooLargeError, UnknownBackendError, UnknownModelError
from ...payload import Payload
from ...recorder import Tally

SERVER_NAME = "duoserve"
#: Every model has one version at the gateway: the one its backends serve.
MODEL_VERSION = "1"
#: A model's "platform" in metadata: the gateway routes each request to one of several runtimes.
PLATFORM = "duoserve"
#: The request parameter (and header, ``X-Backend``) that picks a backend, as on ``/v1``.
BACKEND_PARAMETER = "backend"


def server_metadata(version: str) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": version, "extensions": [BINARY_EXTENSION]}


def model_metadata(entry: ModelEntry) -> dict[str, Any]:
    """Inputs and outputs with name, datatype and shape (``-1``: the batch axis and dynamic axes)."""

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": datatype(t), "shape": metadata_shape(t)} for t in specs]

    return {
        "name": entry.name,
        "versions": [MODEL_VERSION],
        "platform": PLATFORM,
        "inputs": tensors(entry.inputs),
        "outputs": tensors(entry.outputs),
    }


def model(plane: DataPlane, name: str, version: str | None = None) -> ModelEntry:
    """The served model ``name`` (404 if unknown), at ``version`` (404 unless empty or the one version)."""
    entry = plane.model(name)
    if version not in (None, "", MODEL_VERSION):
        raise UnknownModelError(f"model {name} has no version {version[:16]!r}; its one version is {MODEL_VERSION}")
    return entry


async def model_ready(plane: DataPlane, name: str) -> bool:
    """Whether at least one backend serving ``name`` is ready now."""
    readiness = await plane.readiness()
    return any(r.ready for r in readiness.get(name, {}).values())


async def server_ready(plane: DataPlane) -> bool:
    """Every model has a ready backend (the same rule as ``/health/ready``)."""
    readiness = await plane.readiness()
    return all(any(r.ready for r in rs.values()) for rs in readiness.values())


def input_error(exc: InputError) -> GatewayError:
    """The gateway error for a contract check that failed (413 past the model's max batch, else 400)."""
    if exc.status == 413:
        return PayloadTooLargeError(exc.message)
    return InvalidInputError(exc.message)


def requested_backend(parameter: Any, header: str | None) -> str | None:
    """The ``backend`` request parameter or the ``X-Backend`` header (they must agree when both are given)."""
    if parameter is not None and not isinstance(parameter, str):
        raise InvalidInputError(f'parameter "{BACKEND_PARAMETER}" must be a string')
    if parameter and header and parameter != header:
        raise UnknownBackendError(f"parameter backend asks for {parameter[:32]!r} but X-Backend says {header[:32]!r}")
    return parameter or header


def payload(request: InferRequest, entry: ModelEntry, backend: str | None) -> Payload:
    """The binary payload the backends get: arrays for TF's gRPC, the binary layout for TorchServe (encoded
    only when a TorchServe backend asks for it)."""
    arrays = request.arrays
    return Payload(None, arrays, request.rows, "row", backend, encode=lambda: rest_request(arrays, entry))


@dataclass(frozen=True)
class Result:
    """A routed inference: the backend's checked outputs and the timings for ``Server-Timing``."""

    answer: Answer
    started: float

    def timing(self) -> dict[str, str]:
        backend_ms = self.answer.latency_s * 1000
        gateway_ms = max(0.0, (time.perf_counter() - self.started) * 1000 - backend_ms)
        return {
            "X-Backend": self.answer.backend,
            "Server-Timing": f"backend;dur={backend_ms:.3f}, gateway;dur={gateway_ms:.3f}",
        }

    def parameters(self) -> dict[str, str]:
        """Response parameters: which backend and server answered (as ``/v1`` answers them)."""
        return {"backend": self.answer.backend, "server": self.answer.server}


async def infer(
    plane: DataPlane, entry: ModelEntry, request: InferRequest, header_backend: str | None, tally: Tally
) -> Result:
    """Route one checked request through the data plane (``tally``: the request's accounting, which
    the adapter opened when it began reading it)."""
    chosen = requested_backend(request.parameters.get(BACKEND_PARAMETER), header_backend)
    answer = await plane.predict(entry, payload(request, entry, chosen), chosen)
    tally.ok(answer.backend)
    return Result(answer, tally.started)
