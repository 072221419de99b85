"""Triton's own clients (tritonclient.http and tritonclient.grpc) against the real gateway and stack.

For every built-in model and backend: server and model ready, metadata, inference with
JSON and with binary tensors (REST) and with raw tensors (gRPC), the outputs within 1e-6
of the ``/v1`` route's on the same backend. The TF backend's binary requests go over the
TF server's gRPC API (``tensor_content``), TorchServe's as a binary body to the handler.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from stack.builtins import BUILTIN_NAMES, BUILTINS
from tests.utils.inputs import random_batch
from tests.utils.stack import Stack

pytestmark = pytest.mark.slow
BACKENDS = ("torch", "torch_ort", "tf")
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(stack.info.gateway.removeprefix("http://"), network_timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc(stack: Stack) -> Iterator[grpcclient.InferenceServerClient]:
    assert stack.info.gateway_grpc is not None
    client = grpcclient.InferenceServerClient(stack.info.gateway_grpc)
    yield client
    client.close()


def _v1(stack: Stack, model: str, x: np.ndarray, backend: str) -> np.ndarray:
    response = httpx.post(
        f"{stack.info.gateway}/v1/models/{model}/predict",
        content=json.dumps({"instances": x.tolist()}),
        headers={"Content-Type": "application/json", "X-Backend": backend},
        timeout=120,
    )
    assert response.status_code == 200, f"{response.text}\n{stack.tails()}"
    return np.asarray(response.json()["predictions"], dtype=np.float32)


def _metadata(model: str) -> dict[str, Any]:
    entry = BUILTINS[model]
    return {
        "name": model,
        "versions": ["1"],
        "platform": "duoserve",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, *entry.inputs[0].shape]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, *entry.outputs[0].shape]}],
    }


def test_server_live_ready_and_metadata(
    http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient
) -> None:
    assert http.is_server_live()
    assert http.is_server_ready()
    assert grpc.is_server_live()
    assert grpc.is_server_ready()
    for metadata in (http.get_server_metadata(), grpc.get_server_metadata(as_json=True)):
        assert metadata["name"] == "duoserve"
        assert metadata["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("model", BUILTIN_NAMES)
def test_model_ready_and_metadata(
    model: str, http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient
) -> None:
    for client in (http, grpc):
        assert client.is_model_ready(model)
        assert client.is_model_ready(model, "1")
        assert not client.is_model_ready(model, "2")
        assert not client.is_model_ready("no_such_model")
    assert http.get_model_metadata(model) == _metadata(model)
    found = grpc.get_model_metadata(model, as_json=True)
    # protobuf's JSON writes int64 as strings
    for side in ("inputs", "outputs"):
        for tensor in found[side]:
            tensor["shape"] = [int(d) for d in tensor["shape"]]
    assert found == _metadata(model)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", BUILTIN_NAMES)
def test_infer_json_binary_and_grpc_equal_the_v1_route(
    stack: Stack,
    http: httpclient.InferenceServerClient,
    grpc: grpcclient.InferenceServerClient,
    model: str,
    backend: str,
) -> None:
    rows = 2 if model == "resnet" else 5
    x = random_batch(model, rows, seed=11)
    expected = _v1(stack, model, x, backend)

    as_json = httpclient.InferInput("x", list(x.shape), "FP32")
    as_json.set_data_from_numpy(x, binary_data=False)
    json_result = http.infer(
        model,
        [as_json],
        outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=False)],
        headers={"X-Backend": backend},
    )
    assert "parameters" not in json_result.get_response()["outputs"][0]  # the data came as JSON

    as_binary = httpclient.InferInput("x", list(x.shape), "FP32")
    as_binary.set_data_from_numpy(x, binary_data=True)
    binary_result = http.infer(model, [as_binary], request_id="r1", parameters={"backend": backend})
    answer = binary_result.get_response()
    assert (answer["id"], answer["model_name"], answer["model_version"]) == ("r1", model, "1")
    assert answer["parameters"]["backend"] == backend
    assert answer["outputs"][0]["parameters"]["binary_data_size"] == expected.size * 4

    raw = grpcclient.InferInput("x", list(x.shape), "FP32")
    raw.set_data_from_numpy(x)
    grpc_result = grpc.infer(model, [raw], headers={"x-backend": backend}, client_timeout=120)
    assert grpc_result.get_response().parameters["backend"].string_param == backend

    for result in (json_result, binary_result, grpc_result):
        got = result.as_numpy("probabilities")
        assert (got.dtype, got.shape) == (np.float32, expected.shape)
        assert float(np.abs(got - expected).max()) <= TOLERANCE


def test_tf_binary_requests_reach_the_real_tf_server_over_grpc(
    stack: Stack, grpc: grpcclient.InferenceServerClient
) -> None:
    x = random_batch("digits", 3, seed=5)
    raw = grpcclient.InferInput("x", list(x.shape), "FP32")
    raw.set_data_from_numpy(x)
    result = grpc.infer("digits", [raw], headers={"x-backend": "tf"})
    assert result.get_response().parameters["server"].string_param == "duoserve-compat"
    tf = httpx.get(f"{stack.info.gateway}/v1/models", timeout=30).json()["backends"]["tf"]
    assert tf["protocol"] == "rest"  # /v1's JSON goes over REST ...
    assert tf["binary"] == {"protocol": "grpc", "target": stack.info.tf_grpc, "server": "duoserve-compat"}


def test_bad_input_gets_400s_and_never_crashes_the_gateway(
    stack: Stack, http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient
) -> None:
    url = f"{stack.info.gateway}/v2/models/resnet/infer"
    x = random_batch("resnet", 1, seed=2)
    raw = x.tobytes()
    tensor = {"name": "x", "shape": [1, 224, 224, 3], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
    head = json.dumps({"inputs": [tensor]}).encode()
    bodies: list[tuple[bytes, dict[str, str]]] = [
        (head + raw[:-1], {"Inference-Header-Content-Length": str(len(head))}),
        (head + raw, {"Inference-Header-Content-Length": str(len(head) + len(raw) + 1)}),
        (head + raw, {"Inference-Header-Content-Length": "-1"}),
        (head + raw, {"Inference-Header-Content-Length": "1" * 100}),
        (head.replace(b'"FP32"', b'"FP16"') + raw, {"Inference-Header-Content-Length": str(len(head))}),
        (head.replace(b'"x"', b'"y"') + raw, {"Inference-Header-Content-Length": str(len(head))}),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["cat.jpg"]}]}', {}),
        (b"\xff" * 64, {}),
    ]
    for body, headers in bodies:
        response = httpx.post(url, content=body, headers=headers, timeout=60)
        assert response.status_code == 400, response.text
        assert set(response.json()) == {"error"}
    bad = grpcclient.InferInput("x", [1, 224, 224], "FP32")
    bad.set_data_from_numpy(x[..., 0])
    with pytest.raises(grpcclient.InferenceServerException, match="shape \\[1, 224, 224\\] does not fit"):
        grpc.infer("resnet", [bad])
    gateway = stack.info.pids["gateway"]
    os.kill(gateway, 0)  # still the same process
    good = grpcclient.InferInput("x", list(x.shape), "FP32")
    good.set_data_from_numpy(x)
    assert grpc.infer("resnet", [good]).as_numpy("probabilities").shape == (1, 1000)
    assert http.is_server_live()
