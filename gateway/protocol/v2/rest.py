"""The Open Inference Protocol's REST API under ``/v2``: thin routes over the data plane.

Bodies are JSON tensors or, with the binary tensor data extension, a JSON header of
``Inference-Header-Content-Length`` bytes followed by raw tensors; :mod:`contract.oip`
reads and checks them against the model's contract, here in the adapter. The body limit
and timeout are ``/v1``'s. Every error is the protocol's ``{"error": "..."}`` with the
status of :mod:`gateway.errors`, except that a bad input is 400 (``/v1``: 422); a health
or readiness answer of "no" is 400, as the protocol asks (a 4xx means false).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from contract.oip import HEADER_LENGTH, read_rest_request, rest_response
from contract.tensors import InputError

from ...body import read_body
from ...dataplane import DataPlane
from ...errors import GatewayError, UnsupportedMediaTypeError
from ...handlers import error_response as _error_response
from ...handlers import failure_response
from . import common
from .schemas import (
    INFER_ERRORS,
    INFER_EXTRA,
    INFER_OK,
    READ_ERRORS,
    Live,
    ModelMetadata,
    ModelReady,
    Ready,
    ServerMetadata,
)

__all__ = ["error_response", "router"]

# In the OpenAPI document (gateway/protocol/v2/schemas.py); infer is served ahead of FastAPI's routing
# by the inference edge (gateway/edge.py) whatever the document says.
router = APIRouter(prefix="/v2", tags=["v2 (Open Inference Protocol)"])
P = ParamSpec("P")


def error_response(exc: GatewayError) -> JSONResponse:
    """The protocol's error body for a deliberate error (:func:`gateway.handlers.error_response`)."""
    return _error_response(exc, v2=True)


def _protocol_errors(route: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Answer every failure of ``route`` in the protocol's shape; a surprise is a logged 500."""

    @functools.wraps(route)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await route(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- the one mapper: a deliberate error's answer, or a logged 500
            return failure_response(exc, v2=True, where=f"the v2 route {route.__name__}")

    return wrapped


def _plane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.plane
    return plane


def _boolean(key: str, value: bool, **extra: Any) -> JSONResponse:
    return JSONResponse({**extra, key: value}, status_code=200 if value else 400)


@router.get("", responses={200: {"model": ServerMetadata}, **READ_ERRORS})
@_protocol_errors
async def server_metadata(request: Request) -> Response:
    """Server name, version and extensions (binary_tensor_data)."""
    return JSONResponse(common.server_metadata(request.app.version))


@router.get("/health/live", responses={200: {"model": Live}})
@_protocol_errors
async def server_live() -> Response:
    """The process is up."""
    return _boolean("live", True)


@router.get("/health/ready", responses={200: {"model": Ready}, 400: {"model": Ready, "description": "not ready"}})
@_protocol_errors
async def server_ready(request: Request) -> Response:
    """Every model has a ready backend (else 400)."""
    return _boolean("ready", await common.server_ready(_plane(request)))


@router.get("/models/{model}", responses={200: {"model": ModelMetadata}, **READ_ERRORS})
@router.get("/models/{model}/versions/{version}", responses={200: {"model": ModelMetadata}, **READ_ERRORS})
@_protocol_errors
async def model_metadata(model: str, request: Request, version: str | None = None) -> Response:
    """The model's inputs and outputs: name, datatype, shape."""
    return JSONResponse(common.model_metadata(common.model(_plane(request), model, version)))


_MODEL_READY: dict[int | str, dict[str, Any]] = {
    200: {"model": ModelReady},
    400: {"model": ModelReady, "description": "no backend serving the model is ready"},
    **READ_ERRORS,
}


@router.get("/models/{model}/ready", responses=_MODEL_READY)
@router.get("/models/{model}/versions/{version}/ready", responses=_MODEL_READY)
@_protocol_errors
async def model_ready(model: str, request: Request, version: str | None = None) -> Response:
    """At least one backend serving the model is ready (else 400)."""
    plane = _plane(request)
    entry = common.model(plane, model, version)
    return _boolean("ready", await common.model_ready(plane, entry.name), name=entry.name)


@router.post("/models/{model}/infer", openapi_extra=INFER_EXTRA, responses={**INFER_OK, **INFER_ERRORS})
@router.post(
    "/models/{model}/versions/{version}/infer", openapi_extra=INFER_EXTRA, responses={**INFER_OK, **INFER_ERRORS}
)
@_protocol_errors
async def infer(model: str, request: Request, version: str | None = None) -> Response:
    """Inference with JSON or binary tensors, routed by policy, ``parameters.backend`` or X-Backend."""
    plane = _plane(request)
    with plane.request(model) as tally:
        entry = common.model(plane, model, version)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity":
            raise UnsupportedMediaTypeError(f"Content-Encoding {encoding[:24]!r} is not supported; send the body as is")
        plane.admit(entry.name, request.headers.get("x-backend"))  # shed before the body is read, as /v1 does
        raw = await read_body(request, plane.settings.max_body_bytes, plane.settings.body_timeout_s)
        try:
            checked = read_rest_request(raw, request.headers.get(HEADER_LENGTH), entry)
        except InputError as exc:
            raise common.input_error(exc) from None
        result = await common.infer(plane, entry, checked, request.headers.get("x-backend"), tally)
    body, length = rest_response(
        entry,
        result.answer.outputs,
        checked.outputs,
        model_version=common.MODEL_VERSION,
        request_id=checked.id,
        parameters=result.parameters(),
    )
    headers = result.timing()
    if length is None:
        return Response(body, media_type="application/json", headers=headers)
    headers[HEADER_LENGTH] = str(length)
    return Response(body, media_type="application/octet-stream", headers=headers)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
async def unknown(path: str, request: Request) -> Response:
    """Everything else under /v2: the protocol's 404 (repository and Triton extensions are not offered)."""
    return JSONResponse({"error": f"no v2 route {request.method} /v2/{path[:80]}"}, status_code=404)
