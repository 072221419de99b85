"""TF Serving's gRPC API on grpc.aio: PredictionService (Predict, GetModelMetadata), ModelService (GetModelStatus).

Messages and service stubs come from ``tensorflow-serving-api``; tensors convert with
``tf.make_ndarray`` / ``tf.make_tensor_proto``. Errors abort the call with the
status code of :mod:`.errors` (NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE, ...).
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from services.tf_api.compat import SERVER_HEADER, SERVER_NAME
from services.tf_api.compat.dataplane import DataPlane
from services.tf_api.compat.errors import ServingError, invalid
from services.tf_api.compat.servables import ModelRegistry, Servable

log = logging.getLogger(__name__)
#: Sent as initial metadata on every call: which TF server answered (the binary sends none).
_MARK = ((SERVER_HEADER.lower(), SERVER_NAME),)


def _resolve(registry: ModelRegistry, spec: Any) -> Servable:
    version = int(spec.version.value) if spec.HasField("version") else None
    return registry.resolve(spec.name, version, spec.version_label or None)


def _to_array(name: str, proto: Any) -> np.ndarray:
    try:
        return np.asarray(tf.make_ndarray(proto))
    except (ValueError, TypeError) as exc:
        raise invalid(f"input '{name}' is not a valid TensorProto: {exc}") from None


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: ServingError) -> None:
    await context.abort(exc.code.grpc, exc.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    """Predict and GetModelMetadata."""

    def __init__(self, registry: ModelRegistry, dataplane: DataPlane) -> None:
        self._registry = registry
        self._dataplane = dataplane

    async def Predict(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        """One predict call."""
        await context.send_initial_metadata(_MARK)
        try:
            servable = _resolve(self._registry, request.model_spec)
            signature = servable.signature(request.model_spec.signature_name)
            inputs = {k: _to_array(k, v) for k, v in request.inputs.items()}
            outputs = await self._dataplane.predict(servable, signature, inputs, "GRPC")
            wanted = list(request.output_filter) or list(outputs)
            unknown = [k for k in wanted if k not in outputs]
            if unknown:
                raise invalid(f"output tensor alias not found in signature: {unknown[0]}")
        except ServingError as exc:
            await _abort(context, exc)
            raise AssertionError("unreachable") from None  # context.abort raises
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.model
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature.name
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    async def GetModelMetadata(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        """Signature defs of a servable (the only metadata field TF Serving has)."""
        await context.send_initial_metadata(_MARK)
        try:
            fields = list(request.metadata_field)
            if not fields:
                raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
            for field in fields:
                if field != "signature_def":
                    raise invalid(f"Metadata field {field} is not supported")
            servable = _resolve(self._registry, request.model_spec)
        except ServingError as exc:
            await _abort(context, exc)
            raise AssertionError("unreachable") from None
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.model
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(servable.signature_defs)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    """GetModelStatus (config reload is not offered)."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    async def GetModelStatus(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:  # noqa: N802
        """Version states of a model."""
        await context.send_initial_metadata(_MARK)
        spec = request.model_spec
        try:
            version = int(spec.version.value) if spec.HasField("version") else None
            states = self._registry.status(spec.name, version, spec.version_label or None)
        except ServingError as exc:
            await _abort(context, exc)
            raise AssertionError("unreachable") from None
        response = get_model_status_pb2.GetModelStatusResponse()
        for state in states:
            item = response.model_version_status.add()
            item.version = state.version
            item.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
            item.status.error_code = 0 if not state.error else 2  # tensorflow.error.Code UNKNOWN
            item.status.error_message = state.error
        return response


def create_server(
    registry: ModelRegistry, dataplane: DataPlane, address: str, max_message_bytes: int
) -> grpc.aio.Server:
    """A grpc.aio server with both services, bound to ``address`` (not started)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(registry, dataplane), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(registry), server)
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server
