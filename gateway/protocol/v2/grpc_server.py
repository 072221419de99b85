"""The Open Inference Protocol's gRPC service, ``inference.GRPCInferenceService``, on ``GATEWAY_GRPC_PORT``.

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer (with
``raw_input_contents`` or typed ``contents`` in, ``raw_output_contents`` out); any other
method of the protocol or of Triton's extensions answers UNIMPLEMENTED. It is a
``grpc.aio`` server in the gateway's own event loop, started and stopped by the app's
lifespan, over the same data plane as the REST routes. ``GATEWAY_API_KEY`` applies
(metadata ``x-api-key`` or ``authorization: Bearer``; ServerLive and ServerReady are open,
as ``/health/*`` is); ``GATEWAY_MAX_BODY_BYTES`` caps a message. Each answer's initial
metadata carries ``x-backend`` and ``server-timing``, as the REST headers do. Errors abort
with the code of :data:`GRPC_CODES` for the gateway error's HTTP status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
import numpy as np

from contract.dtypes import BY_DATATYPE
from contract.manifest import ModelEntry
from contract.oip import (
    InferRequest,
    check_inputs,
    datatype,
    expected_text,
    requested_output,
    tensor_from_bytes,
    tensor_from_values,
)
from contract.tensors import InputError

from ...config import Settings
from ...credentials import key_refusal
from ...dataplane import DataPlane
from ...errors import GatewayError, UnauthorizedError, UnknownModelError
from ...protos import oip_v2_pb2 as pb
from . import common

log = logging.getLogger("gateway")
#: The protocol's service name: the method paths clients call (the messages' package differs, see the .proto).
SERVICE = "inference.GRPCInferenceService"
GRPC_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    502: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def grpc_code(exc: GatewayError) -> grpc.StatusCode:
    """The status code a gateway error aborts a call with (a backend's own 4xx: INVALID_ARGUMENT)."""
    if exc.status in GRPC_CODES:
        return GRPC_CODES[exc.status]
    return grpc.StatusCode.INVALID_ARGUMENT if 400 <= exc.status < 500 else grpc.StatusCode.INTERNAL


def _parameter(value: pb.InferParameter) -> Any:
    which = value.WhichOneof("parameter_choice")
    return getattr(value, which) if which else None


def _input_array(tensor: Any, raw: bytes | None, entry: ModelEntry) -> np.ndarray:
    try:
        spec = entry.input(tensor.name)
    except KeyError:
        raise InputError(f"unknown input {tensor.name[:64]!r}; {expected_text(entry)}") from None
    shape = list(tensor.shape)
    if raw is not None:
        return tensor_from_bytes(spec, tensor.datatype, shape, raw, entry)
    if not tensor.HasField("contents"):
        raise InputError(f"input {tensor.name} has no data; send it in raw_input_contents or contents")
    if tensor.datatype == "FP16" and datatype(spec) == "FP16":
        raise InputError(f"input {tensor.name}: FP16 has no typed contents; send it in raw_input_contents")
    known = BY_DATATYPE.get(tensor.datatype)
    field = known.contents if known else None  # where typed contents hold its elements (FP16: raw bytes only)
    # an unknown or wrong datatype (BYTES, FP64, ...) is named by the contract check below
    values = np.asarray(getattr(tensor.contents, field)) if field else np.asarray([])
    return tensor_from_values(spec, tensor.datatype, shape, values, entry, may_hold_bools=False)


def read_request(request: pb.ModelInferRequest, entry: ModelEntry) -> InferRequest:
    """A ModelInferRequest checked against ``entry`` (the same checks as REST's, in :mod:`contract.oip`)."""
    inputs = list(request.inputs)
    raw = list(request.raw_input_contents)
    if not inputs:
        raise InputError(f"the request has no inputs; {expected_text(entry)}")
    if raw and len(raw) != len(inputs):
        raise InputError(f"raw_input_contents holds {len(raw)} tensors for {len(inputs)} inputs")
    if raw and any(t.HasField("contents") for t in inputs):
        raise InputError("send every input in raw_input_contents or every input in contents, not both")
    arrays: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(inputs):
        if tensor.name in arrays:
            raise InputError(f"input {tensor.name} appears twice; {expected_text(entry)}")
        arrays[tensor.name] = _input_array(tensor, raw[i] if raw else None, entry)
    ordered, rows = check_inputs(arrays, entry)
    outputs = [
        requested_output(o.name, {k: _parameter(v) for k, v in o.parameters.items()}, True, entry)
        for o in request.outputs
    ]
    names = [o.name for o in outputs]
    if len(set(names)) != len(names):
        raise InputError(f"an output is requested twice: {', '.join(names)}")
    chosen = tuple(outputs) if outputs else tuple(requested_output(n, {}, True, entry) for n in entry.output_names)
    parameters = {k: _parameter(v) for k, v in request.parameters.items()}
    return InferRequest(ordered, rows, chosen, parameters, request.id or None)


def infer_response(entry: ModelEntry, request: InferRequest, result: common.Result) -> pb.ModelInferResponse:
    response = pb.ModelInferResponse(model_name=entry.name, model_version=common.MODEL_VERSION, id=request.id or "")
    for key, value in result.parameters().items():
        response.parameters[key].string_param = value
    for wanted in request.outputs:
        spec = next(t for t in entry.outputs if t.name == wanted.name)
        array = np.ascontiguousarray(result.answer.outputs[wanted.name], dtype=np.dtype(spec.dtype).newbyteorder("<"))
        response.outputs.add(name=spec.name, datatype=datatype(spec), shape=list(array.shape))
        response.raw_output_contents.append(array.tobytes())
    return response


class InferenceService:
    """The six methods, each a thin adapter over the data plane."""

    def __init__(self, plane: DataPlane, version: str, api_key: str | None) -> None:
        self.plane = plane
        self.version = version
        self.key = api_key.encode() if api_key else None

    def _authorize(self, context: Context) -> None:
        if self.key is None:
            return
        reason = key_refusal(context.invocation_metadata() or (), self.key)
        if reason is not None:
            raise UnauthorizedError(f"{reason} API key; send metadata x-api-key or authorization: Bearer")

    async def server_live(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=await common.server_ready(self.plane))

    async def model_ready(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        self._authorize(context)
        try:
            entry = common.model(self.plane, request.name, request.version)
        except UnknownModelError:
            return pb.ModelReadyResponse(ready=False)  # a model that is not served is not ready (Triton says so too)
        return pb.ModelReadyResponse(ready=await common.model_ready(self.plane, entry.name))

    async def server_metadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        self._authorize(context)
        return pb.ServerMetadataResponse(**common.server_metadata(self.version))

    async def model_metadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        self._authorize(context)
        found = common.model_metadata(common.model(self.plane, request.name, request.version))
        response = pb.ModelMetadataResponse(name=found["name"], versions=found["versions"], platform=found["platform"])
        for side in ("inputs", "outputs"):
            for tensor in found[side]:
                getattr(response, side).add(**tensor)
        return response

    async def model_infer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        with self.plane.request(request.model_name) as tally:
            self._authorize(context)
            entry = common.model(self.plane, request.model_name, request.model_version)
            try:
                checked = read_request(request, entry)
            except InputError as exc:
                raise common.input_error(exc) from None
            header = next((str(v) for k, v in context.invocation_metadata() or () if k == "x-backend"), None)
            result = await common.infer(self.plane, entry, checked, header, tally)
        response = infer_response(entry, checked, result)
        await context.send_initial_metadata(tuple((k.lower(), v) for k, v in result.timing().items()))
        return response


def _unary(
    method: Callable[[Any, Context], Awaitable[Any]], request_type: Any, response_type: Any
) -> grpc.RpcMethodHandler:
    async def handle(request: Any, context: Context) -> Any:
        try:
            return await method(request, context)
        except GatewayError as exc:
            trailing = tuple((k.lower(), v) for k, v in exc.headers().items())
            await context.abort(grpc_code(exc), exc.detail, trailing_metadata=trailing)
        except Exception:
            log.exception("unhandled error in gRPC %s", method.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable")  # context.abort raises

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=request_type.FromString, response_serializer=response_type.SerializeToString
    )


class GrpcServer:
    """The gRPC server of one gateway: :meth:`start` in the lifespan, :meth:`stop` on shutdown."""

    def __init__(self, settings: Settings, plane: DataPlane, version: str) -> None:
        service = InferenceService(
            plane, version, settings.api_key.get_secret_value() if settings.api_key is not None else None
        )
        handlers = {
            "ServerLive": _unary(service.server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
            "ServerReady": _unary(service.server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
            "ModelReady": _unary(service.model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
            "ServerMetadata": _unary(service.server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse),
            "ModelMetadata": _unary(service.model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse),
            "ModelInfer": _unary(service.model_infer, pb.ModelInferRequest, pb.ModelInferResponse),
        }
        self.address = f"{settings.host}:{settings.grpc_port}"
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", settings.max_body_bytes),
                ("grpc.max_send_message_length", settings.max_body_bytes),
                # gRPC binds with SO_REUSEPORT by default: a second gateway on the same port would
                # silently share it instead of failing to start
                ("grpc.so_reuseport", 0),
            ]
        )
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))

    async def start(self) -> None:
        """Bind and serve; OSError naming the variable when the port cannot be bound."""
        try:
            bound = self.server.add_insecure_port(self.address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            raise OSError(f"cannot bind the gRPC port {self.address}; set GATEWAY_GRPC_PORT to a free port (0: off)")
        await self.server.start()
        log.info("gateway: Open Inference Protocol gRPC on %s", self.address)

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let running ones finish within ``grace_s``."""
        await self.server.stop(grace_s)
