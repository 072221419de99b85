"""TF Serving's gRPC ``PredictionService/Predict`` (selected by ``GATEWAY_TF_PROTOCOL=grpc``).

The ``tensorflow-serving-api`` stubs import TensorFlow's protobufs, which import
``tensorflow`` itself (seconds of start-up, gigabytes of address space). This module is
imported only when the gRPC protocol is selected, and the stubs only inside
:meth:`TFGrpcClient.__init__`, so a REST-only gateway never loads TensorFlow.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import grpc
import numpy as np

from contract.manifest import ModelEntry
from contract.stackinfo import TF_BINARY, TF_SERVER_HEADER
from contract.tensors import render_outputs

from ..errors import BackendRejectedError, BackendTimeoutError, BackendUnavailableError, BadBackendResponseError
from ..payload import Payload
from .base import BackendClient, BackendResult, Readiness

_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
_REJECTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE}
#: tensorflow.DataType numbers of the contract's dtypes, and the numpy dtype of each TF one.
TF_DTYPES = {"float32": 1, "int32": 3, "int64": 9, "bool": 10, "float16": 19}
_NUMPY = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_, 19: np.float16}
#: Where a TensorProto holds its values when it has no tensor_content.
_VALUE_FIELDS = {1: "float_val", 2: "double_val", 3: "int_val", 9: "int64_val", 10: "bool_val", 19: "half_val"}
_COMPAT_KEY = TF_SERVER_HEADER.lower()


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
    elif int(message.dtype) == 19:  # halves travel as their 16-bit patterns in int32s
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
        self._predict_pb2: Any = importlib.import_module("tensorflow_serving.apis.predict_pb2")
        self._model_pb2: Any = importlib.import_module("tensorflow_serving.apis.get_model_status_pb2")
        service: Any = importlib.import_module("tensorflow_serving.apis.prediction_service_pb2_grpc")
        status_service: Any = importlib.import_module("tensorflow_serving.apis.model_service_pb2_grpc")
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
        self._stub = service.PredictionServiceStub(self.channel)
        self._status_stub = status_service.ModelServiceStub(self.channel)

    def _request(self, model: ModelEntry, payload: Payload) -> Any:
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = model.name
        request.model_spec.signature_name = model.tf_signature
        for tensor in model.inputs:
            tensor_proto(request.inputs[tensor.name], payload.arrays[tensor.name], tensor.dtype)
        return request

    def _decode(self, model: ModelEntry, response: Any) -> dict[str, np.ndarray]:
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
        request = self._request(model, payload)
        start = time.perf_counter()
        call = self._stub.Predict(request, timeout=self.read_timeout_s)
        try:
            response = await call
            metadata = await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        latency = time.perf_counter() - start
        self.server = _server(metadata)
        return BackendResult(render_outputs(self._decode(model, response), payload.format), latency, self.server)

    async def ready(self, model: str) -> Readiness:
        request = self._model_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        call = self._status_stub.GetModelStatus(request, timeout=self.connect_timeout_s)
        try:
            response = await call
            self.server = _server(await call.initial_metadata())
        except Exception as exc:  # noqa: BLE001 -- readiness never raises
            return Readiness(False, self.server or "unknown", f"{type(exc).__name__}: {exc}")
        states = [int(v.state) for v in response.model_version_status]
        return Readiness(30 in states, self.server, f"version states {states}")  # 30 = AVAILABLE

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
