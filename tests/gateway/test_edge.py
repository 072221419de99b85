"""The inference edge, the one credential check and the data plane's import boundary."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import Settings, create_app
from gateway.credentials import key_refusal, presented_key
from gateway.edge import InferenceEdge

from .conftest import Fake, gateway, instances


def test_importing_the_data_plane_loads_no_web_framework() -> None:
    probe = (
        "import sys, gateway.dataplane; "
        "web = ('fastapi', 'starlette', 'uvicorn'); "
        "print(sorted(m for m in web if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("headers", "found"),
    [
        ([], None),
        ([(b"x-api-key", b"k1")], b"k1"),
        ([(b"authorization", b"Bearer  k2 ")], b"k2"),
        ([(b"authorization", b"Basic k3")], None),
        ([("x-api-key", "k4")], b"k4"),  # gRPC metadata: str names and values
        ([("authorization", "bearer k5"), ("x-api-key", "k6")], b"k5"),  # the first one counts
    ],
)
def test_presented_key_reads_rest_headers_and_grpc_metadata(
    headers: list[tuple[str | bytes, str | bytes]], found: bytes | None
) -> None:
    assert presented_key(headers) == found


def test_key_refusal_says_missing_or_wrong() -> None:
    assert key_refusal([], b"k") == "missing"
    assert key_refusal([("x-api-key", "x")], b"k") == "wrong"
    assert key_refusal([("x-api-key", "k")], b"k") is None


class _Tagging:
    """A middleware someone adds later: it must see the inference routes too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-tagged", b"1")]  # type: ignore[misc]
            await send(message)

        await self.app(scope, receive, tagged)


@pytest.mark.anyio
async def test_middleware_added_later_wraps_the_inference_routes(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    app = create_app(settings_for(fake))
    app.add_middleware(_Tagging)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            v1 = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
            v2 = await client.post(
                "/v2/models/mlp/infer",
                json={"inputs": [{"name": "input", "shape": [1, 10], "datatype": "FP32", "data": [0.0] * 10}]},
            )
            unknown = await client.post("/v1/models/nope/predict", json={"instances": []})
    assert (v1.status_code, v1.headers["x-tagged"]) == (200, "1")
    assert v2.headers["x-tagged"] == "1", v2.text
    assert (unknown.status_code, unknown.headers["x-tagged"]) == (404, "1")
    assert unknown.json()["detail"].startswith("unknown model 'nope'")


@pytest.mark.anyio
async def test_edge_failures_answer_as_fastapi_handlers_do(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(fake)) as (client, _):
        v1 = await client.post("/v1/models/mlp/predict", json={"instances": [[1.0]]})
        v2 = await client.post("/v2/models/nope/versions/1/infer", json={"inputs": []})
    assert v1.status_code == 422
    assert "detail" in v1.json()
    assert v2.status_code == 404
    assert "error" in v2.json()


@pytest.mark.anyio
async def test_the_edge_takes_exactly_the_declared_inference_routes(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    async with gateway(settings_for(fake)) as (client, _plane):
        await client.get("/health/live")  # builds the middleware stack
        layer = client._transport.app.middleware_stack  # type: ignore[attr-defined]
        while not isinstance(layer, InferenceEdge):
            layer = layer.app
        paths = sorted(route.path for route in layer.routes)
    assert paths == [
        "/v1/models/{model}/predict",
        "/v2/models/{model}/infer",
        "/v2/models/{model}/versions/{version}/infer",
    ]
