"""The TF Serving gRPC client against a fake PredictionService built on tensorflow-serving-api (slow: TensorFlow).

The gateway's own messages (gateway/protos/tf_serving.proto) talk to TF's generated servicer here;
tests/gateway/test_v2_clients.py talks to the real TF server of the stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import pytest

from gateway import Settings
from tests.utils.servers import free_port

from .conftest import Fake, gateway, instances, outputs

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
async def grpc_target() -> AsyncIterator[tuple[str, dict[str, str]]]:
    apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2

    mode: dict[str, str] = {}

    class Predictions(apis.PredictionServiceServicer):  # type: ignore[misc]
        async def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802 -- gRPC method name
            if mode.get("error"):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad tensor")
            tensor = request.inputs["x"]
            shape = [d.size for d in tensor.tensor_shape.dim]
            x = np.frombuffer(tensor.tensor_content, dtype=np.float32).reshape(shape)
            y = np.asarray(outputs(request.model_spec.name, x.tolist()), dtype=np.float32)
            response = predict_pb2.PredictResponse()
            out = response.outputs["probabilities"]
            out.dtype = 1
            for dim in y.shape:
                out.tensor_shape.dim.add().size = dim
            out.tensor_content = y.tobytes()
            return response

    class Status(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
        async def GetModelStatus(self, request: Any, context: Any) -> Any:  # noqa: N802 -- gRPC method name
            response = get_model_status_pb2.GetModelStatusResponse()
            response.model_version_status.add(version=1, state=30)
            return response

    server = grpc.aio.server()
    apis.add_PredictionServiceServicer_to_server(Predictions(), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Status(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", mode
    finally:
        await server.stop(None)


async def test_grpc_predict_readiness_and_errors(
    grpc_target: tuple[str, dict[str, str]], settings_for: Callable[..., Settings]
) -> None:
    target, mode = grpc_target
    rows = instances("digits", 3)
    settings = settings_for(None, tf_protocol="grpc", tf_grpc_target=target, backends={"digits": ["tf"]})
    async with gateway(settings) as (client, _):
        ok = await client.post("/v1/models/digits/predict", json={"instances": rows})
        models = (await client.get("/v1/models")).json()
        mode["error"] = "yes"
        refused = await client.post("/v1/models/digits/predict", json={"instances": rows})
    assert ok.status_code == 200, ok.text
    assert ok.json()["server"] == "tensorflow_model_server"  # the fake sends no X-TF-Server metadata
    assert np.allclose(ok.json()["predictions"], outputs("digits", np.float32(rows).tolist()))
    assert models["models"]["digits"]["backends"]["tf"]["ready"] is True
    assert models["backends"]["tf"]["protocol"] == "grpc"
    assert refused.status_code == 400
    assert refused.json()["detail"] == "backend tf answered gRPC INVALID_ARGUMENT: bad tensor"


async def test_grpc_backend_down_is_503(settings_for: Callable[..., Settings]) -> None:
    pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    settings = settings_for(
        None, tf_protocol="grpc", tf_grpc_target=f"127.0.0.1:{free_port()}", backends={"mlp": ["tf"]}, read_timeout_s=5
    )
    async with gateway(settings) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"


async def test_v2_requests_reach_tf_over_grpc_even_when_v1_uses_rest(
    grpc_target: tuple[str, dict[str, str]], fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    """TF Serving's REST API is JSON only: a v2 (binary) request goes to its gRPC API, /v1 stays on REST."""
    target, _ = grpc_target
    rows = instances("digits", 2)
    x = np.asarray(rows, dtype=np.float32)
    v2 = {"inputs": [{"name": "x", "shape": [2, 8, 8], "datatype": "FP32", "data": x.ravel().tolist()}]}
    settings = settings_for(fake, tf_grpc_target=target, backends={"digits": ["tf"]})
    async with gateway(settings) as (client, _):
        binary = await client.post("/v2/models/digits/infer", json=v2)
        as_json = await client.post("/v1/models/digits/predict", json={"instances": rows})
        described = (await client.get("/v1/models")).json()["backends"]["tf"]
    assert binary.status_code == 200, binary.text
    np.testing.assert_allclose(binary.json()["outputs"][0]["data"], np.ravel(outputs("digits", x.tolist())))
    assert binary.json()["parameters"]["server"] == "tensorflow_model_server"  # the fake marks nothing
    assert as_json.status_code == 200
    assert [path for _, path, _ in fake.requests] == ["/v1/models/digits:predict"]  # only /v1 went over REST
    assert described["protocol"] == "rest"
    assert described["binary"]["protocol"] == "grpc"


async def test_a_binary_request_to_tf_never_builds_torchserves_body(grpc_target: tuple[str, dict[str, str]]) -> None:
    """The Open Inference Protocol's binary layout is for TorchServe's handler; TF gets the arrays over gRPC."""
    from gateway.backends.tf_grpc import TFGrpcClient
    from gateway.payload import Payload

    from .conftest import entry

    def never() -> tuple[bytes, int]:
        raise AssertionError("TorchServe's binary body was built for a TF request")

    x = np.asarray(instances("digits", 2), dtype=np.float32)
    payload = Payload(None, {"x": x}, 2, "row", None, encode=never)
    client = TFGrpcClient("tf", grpc_target[0], connect_timeout_s=1.0, read_timeout_s=5.0, retry_after_s=1.0)
    try:
        result = await client.predict(entry("digits"), payload)
    finally:
        await client.close()
    assert payload.binary
    assert result.outputs is not None
    np.testing.assert_allclose(result.outputs["probabilities"], outputs("digits", x.tolist()))


def test_tf_dtype_numbers_come_from_the_contracts_table() -> None:
    from gateway.backends.tf_grpc import TF_DTYPES

    assert TF_DTYPES == {"float32": 1, "int32": 3, "int64": 9, "bool": 10, "float16": 19}
