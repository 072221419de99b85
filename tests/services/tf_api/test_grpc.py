"""gRPC Predict, GetModelMetadata and GetModelStatus through tensorflow-serving-api's client stubs."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.services.tf_api.conftest import MODELS
from tests.utils.inputs import random_batch

TOLERANCE = 1e-5
MAX_MESSAGE = 256 * 1024 * 1024


@pytest.fixture(scope="module")
def channel(tf_server) -> Iterator[grpc.Channel]:
    options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
    with grpc.insecure_channel(tf_server.grpc_target, options=options) as chan:
        yield chan


@pytest.fixture(scope="module")
def stub(channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _request(model: str, x: np.ndarray, version: int | None = None, signature: str = "") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    return request


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("n", [1, 32])
def test_predict_matches_savedmodel(stub, reference, model: str, n: int) -> None:
    x = random_batch(model, n, seed=200 + n)
    response = stub.Predict(_request(model, x, version=1, signature="serving_default"), timeout=120)
    outputs = tf.make_ndarray(response.outputs["probabilities"])
    assert outputs.dtype == np.float32
    assert response.model_spec.name == model
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    assert np.abs(outputs - reference(model, x)).max() <= TOLERANCE


def test_metadata_has_signature_def(stub) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "digits"
    response = stub.GetModelMetadata(request, timeout=10)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    signature = signature_map.signature_def["serving_default"]
    assert [d.size for d in signature.inputs["x"].tensor_shape.dim] == [-1, 8, 8]
    assert [d.size for d in signature.outputs["probabilities"].tensor_shape.dim] == [-1, 10]
    assert response.model_spec.version.value == 1


def test_model_status(channel) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "mlp"
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    [status] = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


@pytest.mark.parametrize(
    ("model", "version", "x", "code", "message"),
    [
        ("nope", None, np.zeros((1, 10), np.float32), grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Latest(nope)"),
        ("mlp", 7, np.zeros((1, 10), np.float32), grpc.StatusCode.NOT_FOUND,
         "Servable not found for request: Specific(mlp, 7)"),
        ("mlp", None, np.zeros((1, 5), np.float32), grpc.StatusCode.INVALID_ARGUMENT,
         "input 'x' has shape [1,5] but signature 'serving_default' expects [-1,10] (-1: any size)"),
        ("mlp", None, np.zeros((1, 10), np.float64), grpc.StatusCode.INVALID_ARGUMENT,
         "Expects arg[0] to be float but double is provided"),
        ("mlp", None, np.array([[b"a"] * 10]), grpc.StatusCode.INVALID_ARGUMENT,
         "Expects arg[0] to be float but string is provided"),
        ("mlp", None, np.full((1, 10), np.nan, np.float32), grpc.StatusCode.INVALID_ARGUMENT,
         "input 'x' holds NaN or Infinity at [0,0]; duoserve-compat refuses non-finite input"),
    ],
)  # fmt: skip
def test_predict_errors(stub, reference, model, version, x, code, message) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(_request(model, x, version), timeout=10)
    assert info.value.code() == code
    assert info.value.details() == message
    # still serving
    ok = stub.Predict(_request("mlp", np.ones((1, 10), np.float32)), timeout=10)
    assert (
        np.abs(tf.make_ndarray(ok.outputs["probabilities"]) - reference("mlp", np.ones((1, 10), np.float32))).max()
        <= TOLERANCE
    )


def test_unknown_signature_is_invalid_argument(stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(_request("mlp", np.zeros((1, 10), np.float32), signature="foo"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == 'Serving signature name: "foo" not found in signature def'


def test_missing_input_is_invalid_argument(stub) -> None:
    request = _request("mlp", np.zeros((1, 10), np.float32))
    request.inputs["y"].CopyFrom(request.inputs["x"])
    del request.inputs["x"]
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == (
        "input size does not match signature: 1!=1 len({y}) != len({x}). Sent extra: {y}. Missing but required: {x}."
    )
