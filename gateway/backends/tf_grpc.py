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

from ..errors import BackendRejectedError, BackendTimeoutError, BackendUnavailableError, BadBackendResponseError
from ..payload import Payload
from .base import BackendClient, BackendResult, Readiness

_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
_REJECTED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE}
_DT_FLOAT = 1  # tensorflow.DataType.DT_FLOAT


class TFGrpcClient(BackendClient):
    """One ``grpc.aio`` channel to ``target`` (``host:port``)."""

    def __init__(
        self,
        name: str,
        target: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        retry_after_s: float,
        input_name: str = "x",
        output_name: str = "probabilities",
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
        self.input_name = input_name
        self.output_name = output_name
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self.channel = grpc.aio.insecure_channel(target, options=options)
        self._stub = service.PredictionServiceStub(self.channel)
        self._status_stub = status_service.ModelServiceStub(self.channel)

    def _request(self, model: str, array: np.ndarray) -> Any:
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.model_spec.signature_name = "serving_default"
        tensor = request.inputs[self.input_name]
        tensor.dtype = _DT_FLOAT
        for dim in array.shape:
            tensor.tensor_shape.dim.add().size = int(dim)
        tensor.tensor_content = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        return request

    def _decode(self, response: Any) -> list[Any]:
        if self.output_name not in response.outputs:
            raise BadBackendResponseError(
                f"backend {self.name} answered without output {self.output_name!r}", self.name
            )
        tensor = response.outputs[self.output_name]
        shape = [int(d.size) for d in tensor.tensor_shape.dim]
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype=np.float32)
        else:
            values = np.asarray(tensor.float_val, dtype=np.float32)
        try:
            out: list[Any] = values.reshape(shape).tolist()
        except ValueError:
            raise BadBackendResponseError(
                f"backend {self.name} answered a tensor that is not {shape}", self.name
            ) from None
        return out

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

    async def predict(self, model: str, payload: Payload) -> BackendResult:
        request = self._request(model, payload.array)
        start = time.perf_counter()
        try:
            response = await self._stub.Predict(request, timeout=self.read_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        latency = time.perf_counter() - start
        return BackendResult(self._decode(response), latency, "tf-grpc")

    async def ready(self, model: str) -> Readiness:
        request = self._model_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        try:
            response = await self._status_stub.GetModelStatus(request, timeout=self.connect_timeout_s)
        except Exception as exc:  # noqa: BLE001 -- readiness never raises
            return Readiness(False, "tf-grpc", f"{type(exc).__name__}: {exc}")
        states = [int(v.state) for v in response.model_version_status]
        return Readiness(30 in states, "tf-grpc", f"version states {states}")  # 30 = AVAILABLE

    async def close(self) -> None:
        await self.channel.close()

    def describe(self) -> dict[str, Any]:
        return {"protocol": "tf-grpc", "target": self.target}
