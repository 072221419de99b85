"""Predict through the gateway against fake backends: answers, headers, and every error class."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway import Settings

from .conftest import Fake, gateway, instances, outputs

pytestmark = pytest.mark.anyio


async def test_predict_answers_with_backend_and_timing_headers(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    rows = instances("digits", 3)
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v1/models/digits/predict", json={"instances": rows})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == {
        "model": "digits",
        "backend": "torch",
        "server": "torchserve",
        "predictions": outputs("digits", rows),
    }
    assert resp.headers["X-Backend"] == "torch"
    timing = resp.headers["Server-Timing"]
    assert timing.startswith("backend;dur=")
    assert ", gateway;dur=" in timing
    assert fake.requests[0][1] == "/predictions/digits"


@pytest.mark.parametrize(
    ("how", "backend", "path"),
    [
        ("body", "tf", "/v1/models/mlp:predict"),
        ("header", "torch_ort", "/predictions/mlp_ort"),
        ("body", "torch", "/predictions/mlp"),
    ],
)
async def test_backend_chosen_by_body_or_header(
    fake: Fake, settings_for: Callable[..., Settings], how: str, backend: str, path: str
) -> None:
    rows = instances("mlp", 2)
    body: dict[str, Any] = {"instances": rows}
    headers = {}
    if how == "body":
        body["backend"] = backend
    else:
        headers["X-Backend"] = backend
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["backend"] == backend
    assert fake.requests[-1][1] == path
    if backend == "tf":
        assert resp.json()["server"] == "duoserve-compat"


async def test_forwarded_body_holds_only_instances(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    captured: list[bytes] = []
    original = fake._answer

    async def spy(request: Any, backend: str, model: str) -> Any:
        captured.append(await request.read())
        return await original(request, backend, model)

    fake._answer = spy  # type: ignore[method-assign]
    rows = instances("mlp", 1)
    async with gateway(settings_for(fake)) as (client, _):
        await client.post("/v1/models/mlp/predict", json={"instances": rows, "backend": "tf"})
        raw = json.dumps({"instances": rows}).encode()
        await client.post("/v1/models/mlp/predict", content=raw, headers={"Content-Type": "application/json"})
    assert json.loads(captured[0]) == {"instances": rows}
    assert captured[1] == raw  # forwarded byte for byte


async def test_real_tf_serving_is_told_apart(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    fake.tf_header = None
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1), "backend": "tf"})
        stats = (await client.get("/v1/stats")).json()
    assert resp.json()["server"] == "tensorflow_model_server"
    assert stats["models"]["mlp"]["tf"]["server"] == "tensorflow_model_server"


def _detail(resp: Any) -> str:
    body = resp.json()
    assert set(body) >= {"detail"}
    assert isinstance(body["detail"], str)
    return str(body["detail"])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"instances": [[1.0] * 9]}, 422, ["instance 0 has shape [9]", "each of shape [10]"]),
        ({"instances": []}, 422, ['"instances" is empty']),
        ({"instances": [[1.0] * 10] * 9}, 413, ["9 instances, more than 8"]),
        ({"instances": [[1.0] * 9 + ["a"]]}, 422, ["non-numeric value at instances[0][9]"]),
        ({"instances": [[1.0] * 9 + [True]]}, 422, ["non-numeric value"]),
        ({"rows": []}, 422, ['no "instances"']),
        ([1, 2], 422, ["must be a JSON object"]),
        ({"instances": [[1.0] * 10], "backend": "keras"}, 400, ["'keras' does not serve model mlp"]),
        ({"instances": [[1.0] * 10], "backend": 3}, 422, ['"backend" must be a string']),
    ],
)
async def test_input_errors_never_reach_a_backend(
    fake: Fake, settings_for: Callable[..., Settings], body: Any, status: int, words: list[str]
) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json=body)
    assert resp.status_code == status, resp.text
    detail = _detail(resp)
    for word in words:
        assert word in detail
    assert fake.requests == []


async def test_nan_and_bad_json(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    headers = {"Content-Type": "application/json"}
    async with gateway(settings_for(fake)) as (client, _):
        nan = await client.post(
            "/v1/models/mlp/predict", content=b'{"instances": [[NaN,1,1,1,1,1,1,1,1,1]]}', headers=headers
        )
        broken = await client.post("/v1/models/mlp/predict", content=b'{"instances": [', headers=headers)
    assert nan.status_code == 422
    assert "NaN" in _detail(nan)
    assert broken.status_code == 422
    assert "not valid JSON" in _detail(broken)


async def test_unknown_model_and_backend_header(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        missing = await client.post("/v1/models/nope/predict", json={"instances": [[1.0]]})
        traversal = await client.post("/v1/models/..%2Fmodels/predict", json={"instances": [[1.0]]})
        header = await client.post(
            "/v1/models/mlp/predict", json={"instances": [[1.0] * 10]}, headers={"X-Backend": "x"}
        )
        clash = await client.post(
            "/v1/models/mlp/predict", json={"instances": [[1.0] * 10], "backend": "tf"}, headers={"X-Backend": "torch"}
        )
        route = await client.get("/predictions/mlp")
    assert missing.status_code == 404
    assert "unknown model 'nope'" in _detail(missing)
    assert traversal.status_code == 404
    assert header.status_code == 400
    assert "does not serve model mlp" in _detail(header)
    assert clash.status_code == 400
    assert route.status_code == 404
    assert _detail(route) == "Not Found"
    assert fake.requests == []


async def test_content_type_and_size_limits(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    raw = json.dumps({"instances": instances("mlp", 1)}).encode()
    async with gateway(settings_for(fake, max_body_bytes=len(raw))) as (client, _):
        ok = await client.post("/v1/models/mlp/predict", content=raw, headers={"Content-Type": "application/json"})
        text = await client.post("/v1/models/mlp/predict", content=raw, headers={"Content-Type": "text/plain"})
        none = await client.post("/v1/models/mlp/predict", content=raw, headers={"Content-Type": ""})
        declared = await client.post(
            "/v1/models/mlp/predict", content=raw + b" ", headers={"Content-Type": "application/json"}
        )

        async def chunks() -> Any:  # no Content-Length: the limit applies while streaming
            for _ in range(4):
                yield raw

        streamed = await client.post(
            "/v1/models/mlp/predict", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert ok.status_code == 200
    assert text.status_code == 415
    assert "application/json" in _detail(text)
    assert none.status_code == 415
    assert declared.status_code == 413
    assert f"limit of {len(raw)} bytes" in _detail(declared)
    assert streamed.status_code == 413
    assert "exceeds the limit" in _detail(streamed)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("503", 503, ["answered 503: busy"]),
        ("400", 400, ["answered 400: torch says no"]),
        ("500", 502, ["answered 500: boom"]),
        ("not_json", 502, ["non-JSON"]),
        ("no_predictions", 502, ["without predictions or outputs"]),
        ("wrong_rows", 502, ["output probabilities has shape [1, 1]; expected [2, 1]"]),
        ("wrong_shape", 502, ["output probabilities has shape [2, 2]; expected [2, 1]"]),
        ("reset", 503, ["unreachable"]),
    ],
)
@pytest.mark.parametrize("http_client", ["h1", "aiohttp", "httpx"])
async def test_backend_failures_map_to_statuses(
    fake: Fake, settings_for: Callable[..., Settings], mode: str, status: int, words: list[str], http_client: str
) -> None:
    fake.modes["torch"] = mode
    async with gateway(settings_for(fake, http_client=http_client)) as (client, plane):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 2)})
        stats = plane.stats.snapshot()
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["backend"] == "torch"
    assert resp.headers["X-Backend"] == "torch"
    for word in words:
        assert word in body["detail"]
    if status == 503:
        assert resp.headers["Retry-After"] == "1"
    else:
        assert "Retry-After" not in resp.headers
    errors = stats["models"]["mlp"]["torch"]["since_reset"]["errors"]
    assert sum(errors.values()) == 1


async def test_tf_error_message_passed_on(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    fake.modes["tf"] = "400"
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1), "backend": "tf"})
    assert resp.status_code == 400
    assert resp.json() == {"detail": "backend tf answered 400: tf says no", "backend": "tf"}


@pytest.mark.parametrize("http_client", ["h1", "aiohttp", "httpx"])
async def test_backend_down_is_503_with_retry_after(settings_for: Callable[..., Settings], http_client: str) -> None:
    async with gateway(settings_for(None, http_client=http_client)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert "backend torch is unreachable" in resp.json()["detail"]


@pytest.mark.parametrize("http_client", ["h1", "aiohttp", "httpx"])
async def test_backend_timeout_is_504(fake: Fake, settings_for: Callable[..., Settings], http_client: str) -> None:
    fake.modes["torch"] = "hang"
    async with gateway(settings_for(fake, read_timeout_s=0.2, http_client=http_client)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
    assert resp.status_code == 504
    assert resp.json() == {"detail": "backend torch did not answer within 0.2 s", "backend": "torch"}


async def test_unexpected_error_is_a_logged_500(
    fake: Fake, settings_for: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway(settings_for(fake)) as (client, plane):

        async def explode(*args: Any) -> Any:
            raise RuntimeError("surprise")

        plane.predict = explode
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
    assert resp.status_code == 500
    assert resp.json() == {"detail": "internal error"}
    assert "surprise" in caplog.text


async def test_a_trickling_body_is_cut_off_with_408(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    release = asyncio.Event()

    async def slow() -> Any:
        yield b'{"instances": '
        await release.wait()  # never set: the client stalls mid-body
        yield b"[]}"

    async with gateway(settings_for(fake, body_timeout_s=0.2)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", content=slow(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 408
    assert resp.json() == {"detail": "request body not received within 0.2 s (14 bytes came)"}
    assert fake.requests == []
