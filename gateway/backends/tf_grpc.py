"""TF Serving's gRPC ``PredictionService/Predict``: tensors travel as raw ``tensor_content`` bytes.

Used for every request when ``GATEWAY_TF_PROTOCOL=grpc``, and for the binary (Open
Inference Protocol) requests when it is ``rest``, so an image never becomes JSON between
the gateway and TF. The messages are the gateway's own subset of TF Serving's protos
(:mod:`gateway.protos.tf_serving_pb2`, same field numbers): no TensorFlow in the gateway.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import numpy as np

from contract.dtypes import DTYPES
from contract.manifest import ModelEntry
from contract.stackinfo import TF_BINARY, TF_SERVER_HEADER
from contract.tensors import render_outputs

from ..errors import BackendRejectedError, BackendTimeoutError, BackendUnavailableError, BadBackendResponseError
from ..payload import Payload
from ..protos import tf_serving_pb2 as tfs
from .base import BackendClient, BackendResult, Readiness

_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
_REJECTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE}
#: tensorflow.DataType numbers of the contract's dtypes (:data:`contract.dtypes.DTYPES`)
TF_DTYPES = {name: d.tf_enum for name, d in DTYPES.items()}
#: DT_DOUBLE: not a contract dtype, but an answer may come as one (it is checked and cast after)
_DT_DOUBLE = 2
#: the numpy dtype of each TF one read, and where a TensorProto holds its values without tensor_content
_NUMPY: dict[int, type[np.generic]] = {d.tf_enum: d.numpy for d in DTYPES.values()} | {_DT_DOUBLE: np.float64}
_VALUE_FIELDS = {d.tf_enum: d.tf_values for d in DTYPES.values()} | {_DT_DOUBLE: "double_val"}
_COMPAT_KEY = TF_SERVER_HEADER.lower()
#: TF Serving's method paths (the messages' package differs; it never travels on the wire).
PREDICT = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_STATUS = "/tensorflow.serving.ModelService/GetModelStatus"


def tensor_proto(message: Any, array: np.ndarray, dtype: str) -> None:
    """Fill a TensorProto ``message`` with ``array`` as raw ``tensor_content`` (binary, no JSON)."""
    message.dtype = TF_DTYPES[dtype]
    for dim in array.shape:
        message.tensor_shape.dim.add().size = int(dim)
    message.tensor_content = np.ascontiguousarray(array).tobytes()


def tensor_array(message: Any) -> np.ndarray:
    """A TensorProto's values as an array of its own dtype and shape; ValueError if it cannot be read."""
    dtype = _NUMPY.get(int(message.dtype))
    if dtype is None:
        raise ValueError(f"dtype {message.dtype} is not one duoserve reads")
    shape = [int(d.size) for d in message.tensor_shape.dim]
    values: np.ndarray
    if message.tensor_content:
        values = np.frombuffer(message.tensor_content, dtype=dtype)
    elif int(message.dtype) == DTYPES["float16"].tf_enum:  # halves travel as their 16-bit patterns in int32s
        values = np.asarray(message.half_val, dtype=np.uint16).view(np.float16)
    else:
        values = np.asarray(getattr(message, _VALUE_FIELDS[int(message.dtype)]), dtype=dtype)
    return values.reshape(shape)


class TFGrpcClient(BackendClient):
    """One ``grpc.aio`` channel to ``target`` (``host:port``); tensors travel as raw bytes."""

    def __init__(
        self,
        name: str,
        target: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        retry_after_s: float,
        max_message_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.name = name
        self.target = target
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.retry_after_s = retry_after_s
        self.server: str | None = None
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self.channel = grpc.aio.insecure_channel(target, options=options)
        self._predict = self.channel.unary_unary(
            PREDICT,
            request_serializer=tfs.PredictRequest.SerializeToString,
            response_deserializer=tfs.PredictResponse.FromString,
        )
        self._status = self.channel.unary_unary(
            GET_MODEL_STATUS,
            request_serializer=tfs.GetModelStatusRequest.SerializeToString,
            response_deserializer=tfs.GetModelStatusResponse.FromString,
        )

    def _request(self, model: ModelEntry, payload: Payload) -> tfs.PredictRequest:
        request = tfs.PredictRequest()
        request.model_spec.name = model.name
        request.model_spec.signature_name = model.tf_signature
        for tensor in model.inputs:
            tensor_proto(request.inputs[tensor.name], payload.arrays[tensor.name], tensor.dtype)
        return request

    def _decode(self, model: ModelEntry, response: tfs.PredictResponse) -> dict[str, np.ndarray]:
        outputs: dict[str, np.ndarray] = {}
        for name in model.output_names:
            if name not in response.outputs:
                raise BadBackendResponseError(f"backend {self.name} answered without output {name!r}", self.name)
            try:
                outputs[name] = tensor_array(response.outputs[name])
            except ValueError as exc:
                raise BadBackendResponseError(f"backend {self.name}: output {name!r}: {exc}", self.name) from None
        return outputs

    def _error(self, exc: grpc.aio.AioRpcError) -> Exception:
        code, details = exc.code(), exc.details() or ""
        message = f"backend {self.name} answered gRPC {code.name}: {details}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return BackendTimeoutError(
                f"backend {self.name} did not answer within {self.read_timeout_s:g} s", self.name
            )
        if code in _UNAVAILABLE:
            return BackendUnavailableError(message, self.name, self.retry_after_s)
        if code in _REJECTED:
            return BackendRejectedError(message, self.name, 400)
        return BadBackendResponseError(message, self.name)

    async def predict(self, model: ModelEntry, payload: Payload) -> BackendResult:
        """Binary requests get the output arrays back; JSON ones the answer TF Serving's REST API would give."""
        request = self._request(model, payload)
        start = time.perf_counter()
        call = self._predict(request, timeout=self.read_timeout_s)
        try:
            response = await call
            metadata = await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        latency = time.perf_counter() - start
        self.server = _server(metadata)
        outputs = self._decode(model, response)
        if payload.binary:
            return BackendResult({}, latency, self.server, outputs)
        return BackendResult(render_outputs(outputs, payload.format), latency, self.server)

    async def ready(self, model: str) -> Readiness:
        request = tfs.GetModelStatusRequest()
        request.model_spec.name = model
        call = self._status(request, timeout=self.connect_timeout_s)
        try:
            response = await call
            self.server = _server(await call.initial_metadata())
        except Exception as exc:  # noqa: BLE001 -- readiness never raises
            return Readiness(False, self.server or "unknown", f"{type(exc).__name__}: {exc}")
        states = [int(v.state) for v in response.model_version_status]
        return Readiness(tfs.ModelVersionStatus.AVAILABLE in states, self.server, f"version states {states}")

    async def close(self) -> None:
        await self.channel.close()

    def describe(self) -> dict[str, Any]:
        return {"protocol": "grpc", "target": self.target, "server": self.server}


def _server(metadata: Any) -> str:
    """``duoserve-compat`` when the compatible server marked the call, else TF Serving's binary."""
    for key, value in metadata or ():
        if key.lower() == _COMPAT_KEY:
            return str(value)
    return TF_BINARY
