"""Triton in the native stack (``python -m stack up``), behind the gateway: the ``triton`` and ``triton_ort``
backends answer as TorchServe does, over /v1 and the Open Inference Protocol, in /compare, with the same
refusals; Triton listens on loopback only; a failover policy survives Triton going away."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from contract.manifest import Manifest
from contract.tensors import sample_inputs
from tests.utils.servers import host_addresses, listening
from tests.utils.stack import Stack, post_json, running_stack

pytestmark = pytest.mark.slow
MODELS = "mlp,mlp_ort,digits,digits_ort"
TOLERANCE = 1e-4
FAILOVER = {"mlp": {"policy": "failover", "order": ["triton", "torch"]}}


@pytest.fixture(scope="module")
def triton_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        with running_stack(
            tmp_path_factory.mktemp("triton-stack"),
            torch_models=MODELS,
            triton_models=MODELS,
            env={"GATEWAY_POLICIES": json.dumps(FAILOVER)},
        ) as running:
            yield running
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_the_stack_runs_triton_and_the_gateway_serves_it(triton_stack: Stack) -> None:
    info = triton_stack.info
    assert info.triton is not None
    assert info.triton_models == MODELS
    assert "triton_api" in triton_stack.pids
    for model in ("mlp", "digits"):
        assert info.gateway_backends[model] == ["torch", "torch_ort", "triton", "triton_ort", "tf"]
    models = httpx.get(f"{info.gateway}/v1/models", timeout=10).json()
    assert httpx.get(f"{info.gateway}/health/ready", timeout=10).status_code == 200
    assert "triton" in json.dumps(models)
    # resnet has no TorchServe archive and no Triton model loaded here: the gateway does not offer it on them
    assert "triton" not in info.gateway_backends["resnet"]


@pytest.mark.parametrize("model", ["mlp", "digits"])
def test_triton_backends_answer_as_torchserve_over_v1_and_v2(
    triton_stack: Stack, manifest: Manifest, model: str
) -> None:
    entry = manifest.model(model)
    (tensor,), (output,) = entry.inputs, entry.outputs
    x = sample_inputs(entry, 7, seed=5)[tensor.name]
    answers = {}
    for backend in ("torch", "torch_ort", "triton", "triton_ort"):
        response = post_json(
            triton_stack, f"/v1/models/{model}/predict", {"instances": x.tolist()}, **{"X-Backend": backend}
        )
        assert response.status_code == 200, f"{response.text}\n{triton_stack.tails()}"
        assert response.headers["X-Backend"] == backend
        answers[backend] = np.asarray(response.json()["predictions"], dtype=np.float32)
        assert answers[backend].shape == (7, *output.shape)
    for backend in ("triton", "triton_ort"):
        assert float(np.abs(answers[backend] - answers["torch"]).max()) <= TOLERANCE, backend
    # the Open Inference Protocol, binary tensors, through the gateway
    client = httpclient.InferenceServerClient(triton_stack.info.gateway.removeprefix("http://"))
    for backend in ("triton", "triton_ort"):
        item = httpclient.InferInput(tensor.name, list(x.shape), "FP32")
        item.set_data_from_numpy(x, binary_data=True)
        answer = client.infer(
            model,
            [item],
            outputs=[httpclient.InferRequestedOutput(output.name, binary_data=True)],
            headers={"X-Backend": backend},
        )
        assert float(np.abs(answer.as_numpy(output.name) - answers["torch"]).max()) <= TOLERANCE, backend


def test_compare_includes_both_triton_backends_and_they_agree(triton_stack: Stack, manifest: Manifest) -> None:
    entry = manifest.model("digits")
    x = sample_inputs(entry, 16, seed=3)[entry.inputs[0].name]
    response = post_json(triton_stack, "/v1/models/digits/compare", {"instances": x.tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(r["backend"] for r in body["results"]) == ["tf", "torch", "torch_ort", "triton", "triton_ort"]
    assert {r["server"] for r in body["results"] if r["backend"].startswith("triton")} == {"triton"}
    assert body["max_abs_diff"] <= TOLERANCE
    assert body["argmax_agreement"] == 1.0


def _v2_binary(shape: list[int], datatype: str, raw: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    return head + raw, {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))}


BAD_V1 = {
    "wrong shape": {"instances": [[1.0, 2.0]]},
    "not numbers": {"instances": [["a"] * 10]},
    "too many instances": {"instances": [[0.5] * 10] * 1025},
}


@pytest.mark.parametrize("case", sorted(BAD_V1))
def test_bad_input_gets_the_same_refusal_on_triton_as_on_torchserve(triton_stack: Stack, case: str) -> None:
    refusals = {}
    for backend in ("torch", "triton", "triton_ort"):
        response = post_json(triton_stack, "/v1/models/mlp/predict", BAD_V1[case], **{"X-Backend": backend})
        refusals[backend] = (response.status_code, response.json()["detail"])
    assert refusals["torch"][0] in (413, 422), refusals
    assert refusals["triton"] == refusals["torch"] == refusals["triton_ort"]


@pytest.mark.parametrize(
    ("case", "shape", "datatype", "raw"),
    [
        ("nan", [1, 10], "FP32", struct.pack("<10f", *([0.5] * 9 + [float("nan")]))),
        ("wrong datatype", [1, 10], "INT64", np.ones((1, 10), dtype=np.int64).tobytes()),
        ("wrong shape", [1, 9], "FP32", np.ones((1, 9), dtype=np.float32).tobytes()),
        ("short data", [2, 10], "FP32", np.ones((1, 10), dtype=np.float32).tobytes()),
    ],
)
def test_bad_binary_input_gets_the_same_refusal_on_triton_as_on_torchserve(
    triton_stack: Stack, case: str, shape: list[int], datatype: str, raw: bytes
) -> None:
    body, headers = _v2_binary(shape, datatype, raw)
    refusals = {}
    for backend in ("torch", "triton", "triton_ort"):
        response = httpx.post(
            f"{triton_stack.info.gateway}/v2/models/mlp/infer",
            content=body,
            headers={**headers, "X-Backend": backend},
            timeout=60,
        )
        refusals[backend] = (response.status_code, response.json().get("error") or response.json().get("detail"))
    assert refusals["torch"][0] == 400, refusals
    assert refusals["triton"] == refusals["torch"] == refusals["triton_ort"], case


def test_an_oversized_body_is_413_on_triton_too(triton_stack: Stack) -> None:
    from tests.reliability._support import body_of, raw_exchange, status_of

    port = int(triton_stack.info.gateway.rsplit(":", 1)[1])
    answers = {}
    for backend in ("torch", "triton"):
        head = (
            f"POST /v1/models/mlp/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-Backend: {backend}\r\nContent-Length: {300 * 1024 * 1024}\r\n\r\n"
        )
        raw = raw_exchange(port, [head.encode(), b'{"instances": ['], timeout_s=10)
        answers[backend] = (status_of(raw), body_of(raw)["detail"])
    assert (
        answers["triton"]
        == answers["torch"]
        == (
            413,
            f"request body of {300 * 1024 * 1024} bytes exceeds the limit of 134217728 bytes",
        )
    )


def test_triton_in_the_stack_listens_on_loopback_only(triton_stack: Stack) -> None:
    pid = json.loads((Path(triton_stack.run_dir) / "stack.pids.json").read_text())["triton_api"]
    bound = listening([pid])
    assert info_ports(triton_stack) <= {port for *_, port in bound}, bound
    assert {address for _, _, address, _ in bound} <= {"127.0.0.1", "::1"}, bound
    for address in host_addresses():
        for port in info_ports(triton_stack):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=2).close()


def info_ports(stack: Stack) -> set[int]:
    info = stack.info
    assert info.triton is not None
    assert info.triton_grpc is not None
    assert info.triton_metrics is not None
    return {int(u.rsplit(":", 1)[1]) for u in (info.triton, info.triton_grpc, info.triton_metrics)}


def test_failover_from_triton_to_torchserve_when_triton_is_gone(triton_stack: Stack, manifest: Manifest) -> None:
    from stack.native import StackPaths, stop_service

    entry = manifest.model("mlp")
    x = sample_inputs(entry, 3, seed=1)["x"]
    first = post_json(triton_stack, "/v1/models/mlp/predict", {"instances": x.tolist()})
    assert first.status_code == 200
    assert first.headers["X-Backend"] == "triton"
    stop_service(StackPaths(triton_stack.run_dir, triton_stack.log_dir), "triton_api")
    after = post_json(triton_stack, "/v1/models/mlp/predict", {"instances": x.tolist()})
    assert after.status_code == 200, after.text
    assert after.headers["X-Backend"] == "torch"
    np.testing.assert_allclose(after.json()["predictions"], first.json()["predictions"], atol=TOLERANCE)
    pinned = post_json(triton_stack, "/v1/models/mlp/predict", {"instances": x.tolist()}, **{"X-Backend": "triton"})
    assert pinned.status_code == 503
    assert "triton" in pinned.json()["detail"]
    restarted = triton_stack.command("restart", "triton_api")
    assert restarted.returncode == 0, f"{restarted.stdout}\n{restarted.stderr}\n{triton_stack.tails()}"


def test_make_up_fails_with_tritons_message_and_the_models_name(tmp_path: Path) -> None:
    from tests.services.triton_api.conftest import broken_onnx_root

    root = broken_onnx_root(tmp_path)
    # the stack must not come up
    stack = running_stack(tmp_path / "stack", torch_models="mlp", artifacts=root, triton_models="mlp,mlp_ort")
    with pytest.raises(RuntimeError) as failed, stack:
        pass
    message = str(failed.value)
    assert "stack up failed (1)" in message
    assert "triton_api: model mlp_ort: " in message, message
    assert "INVALID_PROTOBUF" in message or "Protobuf parsing failed" in message, message
