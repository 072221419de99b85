"""TorchServe serving the duoserve archives: parity, batching, auth, closed management, bad input."""

from __future__ import annotations

import concurrent.futures
import functools
import json
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from contract.artifacts import default_root
from contract.manifest import read_manifest
from contract.oip import HEADER_LENGTH, read_rest_response, rest_request
from stack.builtins import BUILTIN_NAMES, BUILTINS
from tests.services.torch_api.conftest import TorchServe
from tests.utils.inputs import random_batch

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
ARCHIVES = [*BUILTIN_NAMES, *(f"{m}_ort" for m in BUILTIN_NAMES)]


@functools.cache
def _scripted(name: str) -> torch.jit.ScriptModule:
    return torch.jit.load(str(read_manifest(default_root()).verify(default_root(), name, "torchscript"))).eval()


def _expected(name: str, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return _scripted(name)(torch.from_numpy(x)).numpy()


def _predict(server: TorchServe, archive: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": "application/json", **server.auth(), **kwargs.pop("headers", {})}
    return httpx.post(f"{server.url}/predictions/{archive}", content=content, headers=headers, timeout=120, **kwargs)


@pytest.mark.parametrize("archive", ARCHIVES)
def test_prediction_equals_in_process_torchscript(torchserve: TorchServe, archive: str) -> None:
    name = archive.removesuffix("_ort")
    (output,) = BUILTINS[name].outputs
    for n in (1, 32):
        x = random_batch(name, n, seed=n)
        response = _predict(torchserve, archive, {"instances": x.tolist()})
        assert response.status_code == 200, response.text
        predictions = np.asarray(response.json()["predictions"], dtype=np.float32)
        assert predictions.shape == (n, *output.shape)
        diff = float(np.abs(predictions - _expected(name, x)).max())
        assert diff <= TOLERANCE, f"{archive} batch {n}: {diff:.2e}"


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(torchserve: TorchServe) -> None:
    inputs = [random_batch("digits", 1 + i % 3, seed=1000 + i) for i in range(48)]

    def call(x: np.ndarray) -> tuple[int, list[list[float]], int]:
        response = _predict(torchserve, "digits", {"instances": x.tolist()})
        return response.status_code, response.json().get("predictions"), int(response.headers["X-Batch-Requests"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, inputs))
    batch_sizes = []
    for x, (status, predictions, batched) in zip(inputs, results, strict=True):
        assert status == 200
        np.testing.assert_allclose(np.asarray(predictions, dtype=np.float32), _expected("digits", x), atol=TOLERANCE)
        batch_sizes.append(batched)
    assert max(batch_sizes) > 1, f"no two requests ever shared a batch: {batch_sizes}"


def test_bad_request_in_a_batch_fails_alone(torchserve: TorchServe) -> None:
    good = [random_batch("mlp", 1, seed=i) for i in range(24)]

    def call(i: int) -> httpx.Response:
        body: Any = {"instances": [[1.0, 2.0]]} if i % 4 == 0 else {"instances": good[i].tolist()}
        return _predict(torchserve, "mlp", body)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(call, range(24)))
    for i, response in enumerate(responses):
        if i % 4 == 0:
            assert response.status_code == 400
            assert response.json()["message"].startswith("instance 0 has shape [2]")
        else:
            assert response.status_code == 200
            np.testing.assert_allclose(response.json()["predictions"], _expected("mlp", good[i]), atol=TOLERANCE)


def _image(value: Any = 1.0) -> list[list[Any]]:
    return [[value] * 8 for _ in range(8)]


EXPECTS = 'model digits expects {"instances": [...]} with 1 to 512 instances, each of shape [8, 8] (float32)'


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "request body is not valid JSON: Expecting property name enclosed in double quotes"),
        ({"instances": [_image()[:7]]}, 400, f"instance 0 has shape [7, 8]; {EXPECTS}"),
        ({"instances": [[1.0] * 64]}, 400, f"instance 0 has shape [64]; {EXPECTS}"),
        ({"instances": [_image("x")]}, 400, f'non-numeric value at instances[0][0][0] = "x"; {EXPECTS}'),
        ({"instances": [_image(False)]}, 400, f"non-numeric value at instances[0][0][0] = false; {EXPECTS}"),
        ('{"instances": [[[NaN]]]}', 400, "request body contains NaN; instances must hold finite numbers"),
        ({"instances": [_image(1e39)]}, 400, "instance 0 holds a value at [0][0] that is NaN, infinite"),
        ({"instances": []}, 400, f'"instances" is empty; {EXPECTS}'),
        ({"examples": [_image()]}, 400, f'request body has no "instances"; {EXPECTS}'),
        ({"instances": [_image()] * 513}, 413, f'"instances" holds 513 instances, more than 512; {EXPECTS}'),
    ],
)
def test_bad_input_gets_4xx_naming_the_expected_shape(
    torchserve: TorchServe, body: Any, status: int, message: str
) -> None:
    response = _predict(torchserve, "digits", body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == status
    assert payload["type"] == "InputError"
    assert payload["message"].startswith(message)


def test_columnar_request_gets_a_columnar_answer(torchserve: TorchServe) -> None:
    x = random_batch("digits", 3, seed=9)
    response = _predict(torchserve, "digits", {"inputs": {"x": x.tolist()}})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"outputs"}
    np.testing.assert_allclose(response.json()["outputs"], _expected("digits", x), atol=TOLERANCE)


def test_form_encoded_body_is_refused_with_a_hint(torchserve: TorchServe) -> None:
    response = _predict(torchserve, "mlp", b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "request has no JSON body (send Content-Type: application/json)" in response.json()["message"]


def _worker_pids(server: TorchServe, archive: str) -> list[int]:
    info = httpx.get(f"http://127.0.0.1:{server.management}/models/{archive}", headers=server.auth("management")).json()
    return sorted(int(w["pid"]) for w in info[0]["workers"])


def test_bad_input_never_kills_a_worker(torchserve: TorchServe) -> None:
    before = _worker_pids(torchserve, "digits")
    for body in (b"\xff\xfe", b"[" * 50_000, b'{"instances": "x"}', b'{"instances": [[[1e400]]]}', b"null"):
        assert _predict(torchserve, "digits", body).status_code == 400
    assert _worker_pids(torchserve, "digits") == before
    x = random_batch("digits", 2)
    assert _predict(torchserve, "digits", {"instances": x.tolist()}).status_code == 200


def _binary(server: TorchServe, archive: str, body: bytes, length: int | str) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(length), **server.auth()}
    return httpx.post(f"{server.url}/predictions/{archive}", content=body, headers=headers, timeout=120)


@pytest.mark.parametrize("archive", ["resnet", "digits_ort"])
def test_binary_tensors_in_and_out(torchserve: TorchServe, archive: str) -> None:
    """The Open Inference Protocol's binary layout, as the gateway sends v2 requests: binary both ways."""
    name = archive.removesuffix("_ort")
    entry = BUILTINS[name]
    x = random_batch(name, 3, seed=21)
    body, length = rest_request({"x": x}, entry)
    response = _binary(torchserve, archive, body, length)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    header = response.headers[HEADER_LENGTH]
    assert (
        json.loads(response.content[: int(header)])["outputs"][0]["parameters"]["binary_data_size"]
        == 3 * 4 * (entry.outputs[0].shape[0])
    )
    outputs = read_rest_response(response.content, header, entry, rows=3)
    as_json = _predict(torchserve, archive, {"instances": x.tolist()}).json()["predictions"]
    np.testing.assert_array_equal(outputs["probabilities"], np.asarray(as_json, dtype=np.float32))
    np.testing.assert_allclose(outputs["probabilities"], _expected(name, x), atol=TOLERANCE)


def test_binary_and_json_requests_share_a_batch(torchserve: TorchServe) -> None:
    inputs = [random_batch("digits", 2, seed=300 + i) for i in range(24)]

    def call(i: int) -> tuple[np.ndarray, int]:
        if i % 2:
            response = _predict(torchserve, "digits", {"instances": inputs[i].tolist()})
            return np.asarray(response.json()["predictions"], np.float32), int(response.headers["X-Batch-Requests"])
        body, length = rest_request({"x": inputs[i]}, BUILTINS["digits"])
        response = _binary(torchserve, "digits", body, length)
        found = read_rest_response(response.content, response.headers[HEADER_LENGTH], BUILTINS["digits"], rows=2)
        return found["probabilities"], int(response.headers["X-Batch-Requests"])

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, range(24)))
    for x, (got, _) in zip(inputs, results, strict=True):
        np.testing.assert_allclose(got, _expected("digits", x), atol=TOLERANCE)
    assert max(batched for _, batched in results) > 1


def _bad_binary(case: str) -> tuple[bytes, str]:
    x = random_batch("digits", 2, seed=1)
    body, length = rest_request({"x": x}, BUILTINS["digits"])
    head, raw = body[:length], body[length:]
    return {
        "short": (head + raw[:-4], str(length)),
        "long": (head + raw + b"\0\0\0\0", str(length)),
        "past_end": (body, str(len(body) + 1)),
        "negative": (body, "-1"),
        "not_a_number": (body, "twelve"),
        "wrong_datatype": (head.replace(b'"FP32"', b'"FP64"') + raw, str(length)),
        "bytes": (head.replace(b'"FP32"', b'"BYTES"') + raw, str(length + 1)),
        "not_json": (b"\x00" * length + raw, str(length)),
    }[case]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("short", "input x: binary_data_size 512 runs past the body's end (508 bytes of binary data left)"),
        ("long", "the body holds 4 bytes after the last binary tensor"),
        ("past_end", "Inference-Header-Content-Length 651 points past the body's end (650 bytes)"),
        ("negative", "Inference-Header-Content-Length -1 is negative"),
        ("not_a_number", "Inference-Header-Content-Length 'twelve' is not a non-negative integer"),
        ("wrong_datatype", 'input x: datatype "FP64"; model digits takes it as FP32'),
        ("bytes", "input x: BYTES tensors are not supported"),
        ("not_json", "request body is not valid JSON"),
    ],
)
def test_bad_binary_bodies_get_a_4xx_and_never_kill_a_worker(torchserve: TorchServe, case: str, message: str) -> None:
    before = _worker_pids(torchserve, "digits")
    body, length = _bad_binary(case)
    response = _binary(torchserve, "digits", body, length)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "InputError"
    assert response.json()["message"].startswith(message)
    assert _worker_pids(torchserve, "digits") == before


def test_inference_needs_the_token(torchserve: TorchServe) -> None:
    body = json.dumps({"instances": random_batch("mlp", 1).tolist()})
    url = f"{torchserve.url}/predictions/mlp"
    for headers in ({}, {"Authorization": "Bearer wrong"}, torchserve.auth("management")):
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers})
        # TorchServe 0.12 answers 400 (not 401) for a missing or wrong key
        assert response.status_code == 400
        assert response.json()["type"] == "InvalidKeyException"
        assert "Token Authorization failed" in response.json()["message"]


def test_management_api_is_not_on_the_inference_port_and_registration_is_off(torchserve: TorchServe) -> None:
    assert httpx.get(f"{torchserve.url}/models", headers=torchserve.auth()).status_code in (400, 404, 405)
    mgmt = f"http://127.0.0.1:{torchserve.management}"
    response = httpx.post(
        f"{mgmt}/models", params={"url": "https://example.com/evil.mar"}, headers=torchserve.auth("management")
    )
    assert response.status_code == 405
    assert response.json()["type"] == "MethodNotAllowedException"
    assert httpx.delete(f"{mgmt}/models/mlp", headers=torchserve.auth("management")).status_code == 405
    # listing still works for the launcher's readiness check, with the management key only
    assert httpx.get(f"{mgmt}/models", headers=torchserve.auth("management")).status_code == 200
    assert httpx.get(f"{mgmt}/models", headers=torchserve.auth("inference")).status_code == 400


def test_effective_config_binds_loopback_and_restricts_urls(torchserve: TorchServe) -> None:
    config = (torchserve.run_dir / "config.properties").read_text()
    settings = dict(line.split("=", 1) for line in config.splitlines() if "=" in line and not line.startswith("#"))
    for key in ("inference_address", "management_address", "metrics_address"):
        assert settings[key].startswith("http://127.0.0.1:")
    assert settings["disable_token_authorization"] == "false"
    assert settings["enable_model_api"] == "false"
    assert settings["allowed_urls"].startswith("^file://")
    assert "http" not in settings["allowed_urls"]
    assert settings["metrics_mode"] == "prometheus"
    assert oct(torchserve.run_dir.stat().st_mode & 0o777) == "0o700"


def test_prometheus_metrics_are_served(torchserve: TorchServe) -> None:
    text = httpx.get(f"http://127.0.0.1:{torchserve.metrics}/metrics").text
    assert "# TYPE ts_inference_requests_total counter" in text
    assert 'ts_inference_requests_total{model_name="mlp"' in text


def test_workers_log_device_runtime_and_threads(torchserve: TorchServe) -> None:
    log = (torchserve.log_dir / "model_log.log").read_text()
    assert "duoserve: mlp loaded with torchscript on cpu" in log
    assert "duoserve: mlp loaded with onnxruntime on cpu" in log  # the mlp_ort archive
    assert "duoserve: resnet loaded with torchscript on cpu, 2 intra-op threads" in log
