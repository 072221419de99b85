"""App-level behaviour: API key, stats and metrics routes, the OpenAPI schema, and import isolation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from gateway import Settings

from .conftest import Fake, gateway, instances

KEY = "correct horse battery staple"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "missing API key"),
        ({"X-API-Key": "wrong"}, 401, "wrong API key"),
        ({"Authorization": "Bearer wrong"}, 401, "wrong API key"),
        ({"Authorization": "Basic " + KEY}, 401, "missing API key"),
        ({"X-API-Key": KEY}, 200, None),
        ({"Authorization": "Bearer " + KEY}, 200, None),
    ],
)
async def test_api_key(
    fake: Fake, settings_for: Callable[..., Settings], headers: dict[str, str], status: int, detail: str | None
) -> None:
    async with gateway(settings_for(fake, api_key=KEY)) as (client, _):
        predict = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)}, headers=headers)
        for path in ("/v1/models", "/v1/stats", "/metrics", "/docs", "/openapi.json"):
            assert (await client.get(path, headers=headers)).status_code == status, path
        assert (await client.get("/health/live")).status_code == 200  # health stays open
        assert (await client.get("/health/ready")).status_code == 200
    assert predict.status_code == status
    if detail:
        assert detail in predict.json()["detail"]
        assert predict.headers["WWW-Authenticate"] == "Bearer"
        assert fake.requests == []


@pytest.mark.anyio
async def test_stats_route_counts_and_resets(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        for _ in range(5):
            await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
        await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1), "backend": "tf"})
        stats = (await client.get("/v1/stats")).json()
        reset = await client.post("/v1/stats/reset")
        after = (await client.get("/v1/stats")).json()
    torch = stats["models"]["mlp"]["torch"]
    assert torch["since_reset"]["count"] == 5
    assert torch["window"]["count"] == 5
    assert torch["server"] == "torchserve"
    assert torch["since_reset"]["p50_ms"] > 0
    assert torch["since_reset"]["p99_ms"] >= torch["since_reset"]["p50_ms"]
    assert stats["models"]["mlp"]["tf"]["server"] == "duoserve-compat"
    assert reset.json() == {"status": "reset"}
    assert after["models"] == {}


@pytest.mark.anyio
async def test_metrics_are_labelled_by_model_backend_and_outcome(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
        await client.post("/v1/models/mlp/predict", json={"instances": [[1]]})
        resp = await client.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert 'gateway_requests_total{backend="torch",model="mlp",outcome="ok"} 1.0' in text
    assert 'gateway_requests_total{backend="none",model="mlp",outcome="invalid_input"} 1.0' in text
    assert 'gateway_backend_duration_seconds_count{backend="torch",model="mlp",outcome="ok"} 1.0' in text
    assert 'gateway_request_duration_seconds_bucket{backend="torch",le="+Inf",model="mlp",outcome="ok"} 1.0' in text
    assert 'gateway_backend_circuit_open{backend="tf"} 0.0' in text


@pytest.mark.anyio
async def test_openapi_declares_the_raw_body_routes(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        schema = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    predict = schema["paths"]["/v1/models/{model}/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"instances", "inputs", "backend"}
    assert body["properties"]["instances"]["anyOf"][0]["minItems"] == 1
    assert {p["name"] for p in predict["parameters"]} == {"model", "X-Backend"}
    assert {"200", "400", "404", "413", "415", "422", "502", "503", "504"} <= set(predict["responses"])
    assert "PredictResponse" in schema["components"]["schemas"]
    paths = set(schema["paths"])
    assert paths == {
        "/v1/models/{model}/predict",
        "/v1/models/{model}/compare",
        "/v1/models",
        "/v1/stats",
        "/v1/stats/reset",
        "/metrics",
        "/health/live",
        "/health/ready",
        *V2_PATHS,
    }
    # nothing forwards TorchServe's management API or arbitrary paths (v2's catch-all 404 is not documented)
    assert not any("{path" in p or "predictions" in p or "register" in p for p in paths)


V2_PATHS = {
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{model}",
    "/v2/models/{model}/versions/{version}",
    "/v2/models/{model}/ready",
    "/v2/models/{model}/versions/{version}/ready",
    "/v2/models/{model}/infer",
    "/v2/models/{model}/versions/{version}/infer",
}


@pytest.mark.anyio
async def test_openapi_describes_the_open_inference_protocol(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        schema = (await client.get("/openapi.json")).json()
        served = await client.post(
            "/v2/models/mlp/infer",
            json={"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP32", "data": [0.5] * 10}]},
            headers={"X-Backend": "torch"},
        )
    components = schema["components"]["schemas"]
    for path in ("/v2/models/{model}/infer", "/v2/models/{model}/versions/{version}/infer"):
        infer = schema["paths"][path]["post"]
        body = infer["requestBody"]["content"]
        # JSON tensors, and the binary tensor extension's body marked as binary
        assert body["application/json"]["schema"]["required"] == ["inputs"]
        assert body["application/octet-stream"]["schema"]["format"] == "binary"
        params = {p["name"]: p for p in infer["parameters"]}
        assert params["Inference-Header-Content-Length"]["in"] == "header"
        assert params["Inference-Header-Content-Length"]["schema"] == {"type": "integer", "minimum": 0}
        assert params["X-Backend"]["schema"]["enum"] == ["torch", "torch_ort", "triton", "triton_ort", "tf"]
        ok = infer["responses"]["200"]
        assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InferResponse"}
        assert ok["content"]["application/octet-stream"]["schema"]["format"] == "binary"
        assert "Inference-Header-Content-Length" in ok["headers"]
        assert {"400", "401", "404", "408", "413", "415", "502", "503", "504"} <= set(infer["responses"])
        assert infer["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/V2Error"
        }
    tensor = body["application/json"]["schema"]["properties"]["inputs"]["items"]
    assert set(tensor["properties"]) == {"name", "shape", "datatype", "parameters", "data"}
    assert "binary_data_size" in tensor["properties"]["parameters"]["anyOf"][0]["properties"]
    assert "$defs" not in json.dumps(schema)  # every reference resolves inside the document
    assert {"InferResponse", "V2Error", "ModelMetadata", "ServerMetadata"} <= set(components)
    ready = schema["paths"]["/v2/models/{model}/ready"]["get"]["responses"]
    assert ready["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ModelReady"}
    # documenting the route changed nothing about serving it: still answered by the fast path
    assert served.status_code == 200, served.text
    assert served.json()["parameters"]["backend"] == "torch"


def test_importing_the_gateway_loads_neither_torch_nor_tensorflow() -> None:
    probe = (
        "import sys, gateway, gateway.app, gateway.__main__; "
        "heavy = ('torch', 'tensorflow', 'tensorflow_serving', 'keras'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
