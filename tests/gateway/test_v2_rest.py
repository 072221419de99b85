"""The Open Inference Protocol's REST API against fake backends: routes, binary tensors, and every error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from contract.oip import HEADER_LENGTH, read_rest_response
from gateway import Settings

from .conftest import Fake, entry, gateway, instances, outputs

pytestmark = pytest.mark.anyio
EXPECTS = "model digits takes input x (FP32, shape [N, 8, 8]), N from 1 to 4"


def _x(rows: int = 2, seed: int = 0) -> np.ndarray:
    return np.asarray(instances("digits", rows, seed), dtype=np.float32)


def _json_body(x: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}], **extra}


def _binary_body(x: np.ndarray, **extra: Any) -> tuple[bytes, dict[str, str]]:
    raw = x.tobytes()
    tensor = {"name": "x", "shape": list(x.shape), "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
    head = json.dumps({"inputs": [tensor], **extra}).encode()
    return head + raw, {HEADER_LENGTH: str(len(head))}


async def test_server_and_model_metadata_and_health(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        server = await client.get("/v2")
        live = await client.get("/v2/health/live")
        ready = await client.get("/v2/health/ready")
        metadata = await client.get("/v2/models/digits")
        versioned = await client.get("/v2/models/digits/versions/1")
        model_ready = await client.get("/v2/models/mlp/versions/1/ready")
        fake.modes["torch"] = "hang"
    assert server.json() == {"name": "duoserve", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    assert metadata.json() == {
        "name": "digits",
        "versions": ["1"],
        "platform": "duoserve",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 8, 8]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
    }
    assert versioned.json() == metadata.json()
    assert (model_ready.status_code, model_ready.json()) == (200, {"name": "mlp", "ready": True})


async def test_not_ready_is_400_and_unknown_things_are_404_in_the_protocols_shape(
    settings_for: Callable[..., Settings],
) -> None:
    async with gateway(settings_for(None, ready_timeout_s=0.5)) as (client, _):  # no backend answers
        ready = await client.get("/v2/health/ready")
        model_ready = await client.get("/v2/models/digits/ready")
        unknown = await client.get("/v2/models/resnet")
        version = await client.post("/v2/models/digits/versions/7/infer", json={})
        route = await client.get("/v2/repository/index")
        method = await client.get("/v2/models/digits/infer")
    assert (ready.status_code, ready.json()) == (400, {"ready": False})
    assert (model_ready.status_code, model_ready.json()) == (400, {"name": "digits", "ready": False})
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "unknown model 'resnet'; served models: digits, mlp"},
    )
    assert version.status_code == 404
    assert version.json() == {"error": "model digits has no version '7'; its one version is 1"}
    assert (route.status_code, route.json()) == (404, {"error": "no v2 route GET /v2/repository/index"})
    assert method.status_code == 404


async def test_json_infer_travels_binary_to_torchserve(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    x = _x(3)
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v2/models/digits/infer", json=_json_body(x, id="a1"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["X-Backend"] == "torch"
    assert resp.headers["Server-Timing"].startswith("backend;dur=")
    body = resp.json()
    assert body == {
        "model_name": "digits",
        "model_version": "1",
        "id": "a1",
        "parameters": {"backend": "torch", "server": "torchserve"},
        "outputs": [
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [3, 10],
                "data": np.asarray(outputs("digits", x.tolist()), np.float32).ravel().tolist(),
            }
        ],
    }
    (backend, path, headers) = fake.requests[0]
    assert (backend, path) == ("torch", "/predictions/digits")
    assert headers["Content-Type"] == "application/octet-stream"  # never JSON tensors to the backend
    assert int(headers[HEADER_LENGTH]) > 0


async def test_binary_infer_answers_binary(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    x = _x(2, seed=4)
    body, headers = _binary_body(x, parameters={"binary_data_output": True})
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v2/models/digits/infer", content=body, headers=headers)
        as_json = [{"name": "probabilities", "parameters": {"binary_data": False}}]
        mixed_body, mixed_headers = _binary_body(x, outputs=as_json, parameters={"binary_data_output": True})
        mixed = await client.post("/v2/models/digits/infer", content=mixed_body, headers=mixed_headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/octet-stream"
    found = read_rest_response(resp.content, resp.headers[HEADER_LENGTH], entry("digits"), rows=2)
    np.testing.assert_array_equal(found["probabilities"], np.asarray(outputs("digits", x.tolist()), np.float32))
    assert HEADER_LENGTH not in mixed.headers
    assert mixed.json()["outputs"][0]["data"] == found["probabilities"].ravel().tolist()


@pytest.mark.parametrize(
    ("how", "backend", "path"),
    [
        ("parameter", "torch_ort", "/predictions/mlp_ort"),
        ("header", "torch_ort", "/predictions/mlp_ort"),
        ("both", "torch", "/predictions/mlp"),
        ("policy", "torch", "/predictions/mlp"),
    ],
)
async def test_backend_chosen_by_parameter_header_or_policy(
    fake: Fake, settings_for: Callable[..., Settings], how: str, backend: str, path: str
) -> None:
    x = np.asarray(instances("mlp", 2), np.float32)
    body = {"inputs": [{"name": "x", "shape": [2, 10], "datatype": "FP32", "data": x.tolist()}]}
    headers: dict[str, str] = {}
    if how in ("parameter", "both"):
        body["parameters"] = {"backend": backend}
    if how in ("header", "both"):
        headers["X-Backend"] = backend
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v2/models/mlp/infer", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Backend"] == backend
    assert resp.json()["parameters"]["backend"] == backend
    assert fake.requests[-1][1] == path


async def test_backend_choice_errors(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    body = _json_body(_x(1))
    async with gateway(settings_for(fake, backends={"digits": ["torch"], "mlp": ["torch"]})) as (client, _):
        conflict = await client.post(
            "/v2/models/digits/infer", json={**body, "parameters": {"backend": "tf"}}, headers={"X-Backend": "torch"}
        )
        unknown = await client.post("/v2/models/digits/infer", json=body, headers={"X-Backend": "tf"})
        not_text = await client.post("/v2/models/digits/infer", json={**body, "parameters": {"backend": 3}})
    assert (conflict.status_code, conflict.json()) == (
        400,
        {"error": "parameter backend asks for 'tf' but X-Backend says 'torch'"},
    )
    assert (unknown.status_code, unknown.json()) == (
        400,
        {"error": "backend 'tf' does not serve model digits; choose one of: torch"},
    )
    assert (not_text.status_code, not_text.json()) == (400, {"error": 'parameter "backend" must be a string'})
    assert fake.requests == []


def _bad(case: str) -> tuple[bytes, dict[str, str]]:
    x = _x(2)
    good = _json_body(x)["inputs"][0]
    raw, binary_headers = _binary_body(x)
    length = int(binary_headers[HEADER_LENGTH])

    def as_json(tensor: dict[str, Any], **extra: Any) -> tuple[bytes, dict[str, str]]:
        return json.dumps({"inputs": [tensor], **extra}).encode(), {}

    return {
        "shape": as_json({**good, "shape": [2, 64]}),
        "datatype": as_json({**good, "datatype": "INT32"}),
        "bytes": as_json({**good, "datatype": "BYTES", "data": ["a"] * 128}),
        "binary_size": (raw[:-8], binary_headers),
        "size_vs_shape": (_size_vs_shape(x), {HEADER_LENGTH: str(_size_vs_shape_length(x))}),
        "header_past_end": (raw, {HEADER_LENGTH: str(len(raw) + 1)}),
        "header_negative": (raw, {HEADER_LENGTH: "-4"}),
        "header_huge": (raw, {HEADER_LENGTH: "9" * 40}),
        "header_not_a_number": (raw, {HEADER_LENGTH: "0x10"}),
        "trailing_bytes": (raw + b"\0" * 4, binary_headers),
        "unknown_input": as_json({**good, "name": "pixels"}),
        "unknown_output": as_json(good, outputs=[{"name": "logits"}]),
        "missing_input": (b'{"inputs": []}', {}),
        "no_data": as_json({k: v for k, v in good.items() if k != "data"}),
        "not_json": (raw[:length] + b"}", {}),
    }[case]


def _size_vs_shape(x: np.ndarray) -> bytes:
    raw = x[:, :4].tobytes()  # half the bytes the declared shape needs, declared as such
    tensor = {"name": "x", "shape": [2, 8, 8], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
    return json.dumps({"inputs": [tensor]}).encode() + raw


def _size_vs_shape_length(x: np.ndarray) -> int:
    return len(_size_vs_shape(x)) - x[:, :4].nbytes


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("shape", f"input x: shape [2, 64] does not fit; {EXPECTS}"),
        ("datatype", f'input x: datatype "INT32"; model digits takes it as FP32; {EXPECTS}'),
        ("bytes", "input x: BYTES tensors are not supported (no duoserve model takes strings)"),
        ("binary_size", "input x: binary_data_size 512 runs past the body's end (504 bytes of binary data left)"),
        ("size_vs_shape", "input x: 256 bytes of binary data, but shape [2, 8, 8] of FP32 is 512 bytes"),
        ("header_past_end", "Inference-Header-Content-Length 621 points past the body's end (620 bytes)"),
        ("header_negative", "Inference-Header-Content-Length -4 is negative"),
        ("header_huge", "Inference-Header-Content-Length 999999999999999999999999 points past the body's end"),
        ("header_not_a_number", "Inference-Header-Content-Length '0x10' is not a non-negative integer"),
        ("trailing_bytes", "the body holds 4 bytes after the last binary tensor"),
        ("unknown_input", f'unknown input "pixels"; {EXPECTS}'),
        ("unknown_output", 'unknown output "logits"; model digits has probabilities'),
        ("missing_input", '"inputs" must be a non-empty list of tensors'),
        ("no_data", f"input x has neither data nor binary_data_size; {EXPECTS}"),
        ("not_json", "request body is not valid JSON"),
    ],
)
async def test_bad_input_is_a_400_in_the_protocols_shape_and_never_reaches_a_backend(
    fake: Fake, settings_for: Callable[..., Settings], case: str, message: str
) -> None:
    body, headers = _bad(case)
    async with gateway(settings_for(fake)) as (client, plane):
        resp = await client.post("/v2/models/digits/infer", content=body, headers=headers)
        counted = plane.metrics.render().decode()
    assert resp.status_code == 400, resp.text
    assert set(resp.json()) == {"error"}
    assert resp.json()["error"].startswith(message)
    assert fake.requests == []
    assert 'gateway_requests_total{backend="none",model="digits",outcome="invalid_input"} 1.0' in counted


async def test_missing_input_of_a_two_input_model(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    from contract.manifest import Manifest, ModelEntry, TensorSpec

    settings = settings_for(fake)
    text = ModelEntry(
        name="text",
        inputs=(TensorSpec(name="ids", dtype="int64", shape=(4,)), TensorSpec(name="mask", dtype="bool", shape=(4,))),
        outputs=(TensorSpec(name="logits", shape=(2,)),),
        max_batch=2,
    )
    Manifest(models={"text": text}).write(settings.manifest)
    body = {"inputs": [{"name": "ids", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}]}
    async with gateway(settings) as (client, _):
        resp = await client.post("/v2/models/text/infer", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("missing input mask; model text takes inputs ids (INT64, shape [N, 4])")


async def test_body_limits_apply_as_on_v1(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    body, headers = _binary_body(_x(2))
    async with gateway(settings_for(fake, max_body_bytes=600)) as (client, _):
        too_big = await client.post("/v2/models/digits/infer", content=body, headers=headers)
        fits = await client.post(
            "/v2/models/digits/infer", content=_binary_body(_x(1))[0], headers=_binary_body(_x(1))[1]
        )
    async with gateway(settings_for(fake)) as (client, _):
        many = await client.post("/v2/models/digits/infer", json=_json_body(np.zeros((5, 8, 8), np.float32)))
        gzip = await client.post(
            "/v2/models/digits/infer", content=body, headers={**headers, "Content-Encoding": "gzip"}
        )
    assert (too_big.status_code, too_big.json()) == (
        413,
        {"error": f"request body of {len(body)} bytes exceeds the limit of 600 bytes"},
    )
    assert fits.status_code == 200
    assert many.status_code == 413
    assert many.json()["error"].startswith("input x holds 5 instances, more than 4")
    assert (gzip.status_code, gzip.json()) == (
        415,
        {"error": "Content-Encoding 'gzip' is not supported; send the body as is"},
    )
    assert fake.requests[-1][2]["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(("mode", "status"), [("503", 503), ("500", 502), ("400", 400), ("not_json", 502)])
async def test_backend_failures_keep_their_status_in_the_protocols_shape(
    fake: Fake, settings_for: Callable[..., Settings], mode: str, status: int
) -> None:
    fake.modes["torch"] = mode
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v2/models/digits/infer", json=_json_body(_x(1)))
    assert resp.status_code == status
    assert set(resp.json()) == {"error"}
    assert resp.json()["error"].startswith("backend torch")
    assert resp.headers["X-Backend"] == "torch"
    if status == 503:
        assert resp.headers["Retry-After"] == "1"


async def test_v2_requests_count_in_stats(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        for _ in range(3):
            assert (await client.post("/v2/models/digits/infer", json=_json_body(_x(1)))).status_code == 200
        stats = (await client.get("/v1/stats")).json()
    assert stats["models"]["digits"]["torch"]["since_reset"]["count"] == 3


async def test_api_key_guards_v2_but_not_its_health(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake, api_key="s3cret")) as (client, _):
        refused = await client.post("/v2/models/digits/infer", json=_json_body(_x(1)))
        metadata = await client.get("/v2/models/digits")
        live = await client.get("/v2/health/live")
        ready = await client.get("/v2/health/ready")
        allowed = await client.post(
            "/v2/models/digits/infer", json=_json_body(_x(1)), headers={"Authorization": "Bearer s3cret"}
        )
    assert refused.status_code == 401
    assert refused.json() == {"error": "missing API key; send X-API-Key or Authorization: Bearer"}
    assert metadata.status_code == 401
    assert (live.status_code, ready.status_code, allowed.status_code) == (200, 200, 200)
