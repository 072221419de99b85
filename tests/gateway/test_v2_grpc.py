"""The Open Inference Protocol's gRPC service against fake backends, called with tritonclient's asyncio client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.grpc.aio as triton_aio
from tritonclient.utils import InferenceServerException

from gateway import Settings
from gateway.protos import oip_v2_pb2 as pb
from tests.utils.servers import free_port

from .conftest import Fake, gateway, instances, outputs

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def grpc_gateway(settings: Settings) -> AsyncIterator[tuple[triton_aio.InferenceServerClient, grpc.aio.Channel]]:
    """The app with its lifespan (and so its gRPC server) running; Triton's client and a raw channel to it."""
    target = f"127.0.0.1:{settings.grpc_port}"
    async with gateway(settings):
        client = triton_aio.InferenceServerClient(target)
        channel = grpc.aio.insecure_channel(target)
        try:
            yield client, channel
        finally:
            await client.close()
            await channel.close()


@pytest.fixture
def grpc_settings(fake: Fake, settings_for: Callable[..., Settings]) -> Callable[..., Settings]:
    return lambda **overrides: settings_for(fake, grpc_port=free_port(), **overrides)


def _input(x: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return tensor


def _x(rows: int = 2) -> np.ndarray:
    return np.asarray(instances("digits", rows), dtype=np.float32)


async def test_health_metadata_and_raw_infer(fake: Fake, grpc_settings: Callable[..., Settings]) -> None:
    x = _x(3)
    async with grpc_gateway(grpc_settings()) as (client, _):
        assert await client.is_server_live()
        assert await client.is_server_ready()
        assert await client.is_model_ready("digits")
        assert not await client.is_model_ready("digits", "2")
        assert not await client.is_model_ready("resnet")
        server = await client.get_server_metadata(as_json=True)
        metadata = await client.get_model_metadata("digits", as_json=True)
        result = await client.infer("digits", [_input(x)], request_id="g1")
    assert server == {"name": "duoserve", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "8", "8"]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": ["-1", "10"]}]
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("digits", "1", "g1")
    assert response.parameters["backend"].string_param == "torch"
    np.testing.assert_array_equal(
        result.as_numpy("probabilities"), np.asarray(outputs("digits", x.tolist()), np.float32)
    )
    assert fake.requests[-1][2]["Content-Type"] == "application/octet-stream"


async def test_typed_contents_backend_metadata_and_timing(fake: Fake, grpc_settings: Callable[..., Settings]) -> None:
    """A client that sends ``contents.fp32_contents`` instead of raw bytes; X-Backend as metadata."""
    x = _x(2)
    request = pb.ModelInferRequest(model_name="digits")
    request.inputs.add(name="x", datatype="FP32", shape=[2, 8, 8]).contents.fp32_contents.extend(x.ravel().tolist())
    async with grpc_gateway(grpc_settings()) as (_, channel):
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )(request, metadata=(("x-backend", "torch_ort"),), timeout=10)
        response = await call
        metadata = dict(await call.initial_metadata())
    assert metadata["x-backend"] == "torch_ort"
    assert metadata["server-timing"].startswith("backend;dur=")
    assert fake.requests[-1][1] == "/predictions/digits_ort"
    (raw,) = response.raw_output_contents
    got = np.frombuffer(raw, dtype="<f4").reshape(2, 10)
    np.testing.assert_array_equal(got, np.asarray(outputs("digits", x.tolist()), np.float32))


def _bad_request(case: str) -> tuple[pb.ModelInferRequest, dict[str, Any]]:
    x = _x(2)
    request = pb.ModelInferRequest(model_name="digits")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[2, 8, 8])
    raw = x.tobytes()
    metadata: dict[str, Any] = {}
    if case == "shape":
        tensor.shape[:] = [2, 64]
    elif case == "datatype":
        tensor.datatype = "FP64"
    elif case == "bytes":
        tensor.datatype = "BYTES"
    elif case == "raw_size":
        raw = raw[:-4]
    elif case == "raw_count":
        request.raw_input_contents.append(raw)
    elif case == "unknown_input":
        tensor.name = "pixels"
    elif case == "unknown_output":
        request.outputs.add(name="logits")
    elif case == "missing_input":
        del request.inputs[:]
        raw = b""
    elif case == "no_data":
        raw = b""
    elif case == "both":
        tensor.contents.fp32_contents.append(1.0)
    elif case == "backend":
        request.parameters["backend"].string_param = "onnx"
    if raw:
        request.raw_input_contents.append(raw)
    return request, metadata


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("shape", "input x: shape [2, 64] does not fit"),
        ("datatype", 'input x: datatype "FP64"; model digits takes it as FP32'),
        ("bytes", "input x: BYTES tensors are not supported"),
        ("raw_size", "input x: 508 bytes of binary data, but shape [2, 8, 8] of FP32 is 512 bytes"),
        ("raw_count", "raw_input_contents holds 2 tensors for 1 inputs"),
        ("unknown_input", "unknown input 'pixels'"),
        ("unknown_output", 'unknown output "logits"; model digits has probabilities'),
        ("missing_input", "the request has no inputs"),
        ("no_data", "input x has no data; send it in raw_input_contents or contents"),
        ("both", "send every input in raw_input_contents or every input in contents, not both"),
        ("backend", "backend 'onnx' does not serve model digits"),
    ],
)
async def test_bad_input_is_invalid_argument(
    fake: Fake, grpc_settings: Callable[..., Settings], case: str, message: str
) -> None:
    request, _ = _bad_request(case)
    async with grpc_gateway(grpc_settings()) as (_, channel):
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await infer(request, timeout=10)
        still = await infer(_bad_request("none")[0], timeout=10)  # the server goes on serving
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(message)
    assert len(still.raw_output_contents) == 1
    assert len(fake.requests) == 1


async def test_status_codes_for_unknown_model_backend_down_and_unimplemented(
    fake: Fake, grpc_settings: Callable[..., Settings]
) -> None:
    async with grpc_gateway(grpc_settings()) as (client, _):
        with pytest.raises(InferenceServerException) as unknown:
            await client.infer("resnet", [_input(_x(1))])
        fake.modes["torch"] = "503"
        with pytest.raises(InferenceServerException) as down:
            await client.infer("digits", [_input(_x(1))])
        fake.modes["torch"] = "500"
        with pytest.raises(InferenceServerException) as broken:
            await client.infer("digits", [_input(_x(1))])
        with pytest.raises(InferenceServerException) as config:
            await client.get_model_config("digits")
    assert unknown.value.status() == "StatusCode.NOT_FOUND"
    assert unknown.value.message() == "unknown model 'resnet'; served models: digits, mlp"
    assert down.value.status() == "StatusCode.UNAVAILABLE"
    assert down.value.message().startswith("backend torch answered 503")
    assert broken.value.status() == "StatusCode.INTERNAL"
    assert config.value.status() == "StatusCode.UNIMPLEMENTED"


async def test_api_key_guards_all_but_live_and_ready(fake: Fake, grpc_settings: Callable[..., Settings]) -> None:
    async with grpc_gateway(grpc_settings(api_key="s3cret")) as (client, _):
        assert await client.is_server_live()
        assert await client.is_server_ready()
        with pytest.raises(InferenceServerException) as refused:
            await client.infer("digits", [_input(_x(1))])
        with pytest.raises(InferenceServerException) as wrong:
            await client.get_model_metadata("digits", headers={"x-api-key": "nope"})
        allowed = await client.infer("digits", [_input(_x(1))], headers={"authorization": "Bearer s3cret"})
    assert refused.value.status() == "StatusCode.UNAUTHENTICATED"
    assert refused.value.message() == "missing API key; send metadata x-api-key or authorization: Bearer"
    assert wrong.value.message().startswith("wrong API key")
    assert allowed.as_numpy("probabilities").shape == (1, 10)


async def test_message_size_limit_is_the_body_limit(fake: Fake, grpc_settings: Callable[..., Settings]) -> None:
    async with grpc_gateway(grpc_settings(max_body_bytes=300)) as (client, _):
        with pytest.raises(InferenceServerException) as caught:
            await client.infer("digits", [_input(_x(2))])
        small = await client.infer("digits", [_input(_x(1))])
    assert caught.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert small.as_numpy("probabilities").shape == (1, 10)


async def test_a_taken_grpc_port_fails_start_up_naming_the_variable(grpc_settings: Callable[..., Settings]) -> None:
    settings = grpc_settings()
    async with gateway(settings):  # a second gateway on the same gRPC port must not share it (SO_REUSEPORT)
        with pytest.raises(OSError, match=r"cannot bind the gRPC port .*; set GATEWAY_GRPC_PORT to a free port"):
            async with gateway(settings):
                pass
