"""App-level behaviour: API key, stats and metrics routes, the OpenAPI schema, and import isolation."""

from __future__ import annotations

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
    }
    # nothing forwards TorchServe's management API or arbitrary paths
    assert not any("{path" in p or "predictions" in p or "register" in p for p in paths)


def test_importing_the_gateway_loads_neither_torch_nor_tensorflow() -> None:
    probe = (
        "import sys, gateway, gateway.app, gateway.__main__; "
        "heavy = ('torch', 'tensorflow', 'tensorflow_serving', 'keras'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
