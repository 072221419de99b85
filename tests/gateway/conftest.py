"""Fake backends that speak TorchServe's and TF Serving's wire contracts, and a gateway to test.

Each fake is a real aiohttp server on a free 127.0.0.1 port (so the gateway's real
pooled clients are exercised); its behaviour per backend is switched by ``modes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contract.manifest import Manifest, ModelEntry, TensorSpec
from contract.oip import HEADER_LENGTH, RequestedOutput, read_rest_request, rest_response
from gateway import Settings, create_app
from tests.utils.servers import free_port

MODELS: dict[str, dict[str, Any]] = {
    "mlp": {"input": [10], "output": [1], "max_batch": 8},
    "digits": {"input": [8, 8], "output": [10], "max_batch": 4},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def entry(name: str) -> ModelEntry:
    """The contract of a fake model: input ``x``, output ``probabilities``."""
    m = MODELS[name]
    return ModelEntry(
        name=name,
        description=f"test model {name}",
        inputs=(TensorSpec(name="x", shape=tuple(m["input"]), value_range=(0, 1)),),
        outputs=(TensorSpec(name="probabilities", shape=tuple(m["output"])),),
        max_batch=m["max_batch"],
    )


@pytest.fixture
def manifest_path(tmp_path: Path) -> Path:
    path = tmp_path / "artifacts" / "manifest.json"
    Manifest(models={name: entry(name) for name in MODELS}).write(path)
    return path


def outputs(model: str, instances: list[Any], offset: float = 0.0) -> list[list[float]]:
    """What every fake backend answers: deterministic per row, shifted by ``offset``."""
    width = MODELS[model]["output"][0]
    rows = []
    for inst in instances:
        total = float(np.sum(inst))
        if width == 1:
            rows.append([0.75 + offset if total >= 0 else 0.25 + offset])
        else:
            row = [0.0] * width
            row[int(abs(total)) % width] = 1.0
            rows.append([v + offset for v in row])
    return rows


@dataclass
class Fake:
    """One fake server: TorchServe paths and TF Serving paths, modes per backend name."""

    modes: dict[str, str] = field(default_factory=dict)
    offsets: dict[str, float] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    key: str | None = None
    key_file: Path | None = None
    refusal_status: int = 400  # TorchServe refuses a bad token with 400 or 401
    tf_header: str | None = "duoserve-compat"
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def rotate_key(self, key: str) -> None:
        """What TorchServe does on restart: a new key, written to key_file.json."""
        self.key = key
        assert self.key_file is not None
        self.key_file.write_text(
            json.dumps(
                {"management": {"key": "m"}, "inference": {"key": key, "expiration time": "x"}, "API": {"key": "a"}}
            )
        )

    async def _answer(self, request: web.Request, backend: str, model: str) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((backend, request.path, dict(request.headers)))
        mode = self.modes.get(backend, "ok")
        if mode == "hang":
            self.started.set()
            await self.release.wait()
        if mode == "reset":
            assert request.transport is not None
            request.transport.close()  # closed before any status line: a failure before answering
            return web.Response()
        if mode == "503":
            return web.json_response(
                {"code": 503, "type": "ServiceUnavailableException", "message": "busy"}, status=503
            )
        if mode == "400":
            if backend == "tf":
                return web.json_response({"error": "tf says no"}, status=400)
            return web.json_response({"code": 400, "type": "InputError", "message": "torch says no"}, status=400)
        if mode == "500":
            return web.json_response({"code": 500, "type": "InternalServerException", "message": "boom"}, status=500)
        if mode == "not_json":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if mode == "no_predictions":
            return web.json_response({"result": []})
        binary = request.headers.get("Content-Type") == "application/octet-stream"
        if binary:  # the Open Inference Protocol's binary layout, as duoserve's handler takes it
            checked = read_rest_request(body, request.headers.get(HEADER_LENGTH), entry(model))
            instances = checked.arrays["x"].tolist()
        else:
            instances = json.loads(body)["instances"]
        preds = outputs(model, instances, self.offsets.get(backend, 0.0))
        if mode == "wrong_rows":
            preds = preds[:-1] or [*preds, *preds]
        if mode == "wrong_shape":
            preds = [[*row[:-1], 0.0, 0.0] for row in preds]
        headers = {"X-TF-Server": self.tf_header} if backend == "tf" and self.tf_header else {}
        if binary:
            array = np.asarray(preds, dtype=np.float32)
            every = [RequestedOutput("probabilities", True)]
            answer, length = rest_response(entry(model), {"probabilities": array}, every)
            assert length is not None
            return web.Response(
                body=answer, content_type="application/octet-stream", headers={HEADER_LENGTH: str(length)}
            )
        if mode == "cut":  # TorchServe stopped mid-answer: a status line, half a body, then the connection drops
            data = json.dumps({"predictions": preds}).encode()
            resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(data))})
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()
            return resp
        if mode in ("chunked", "close"):
            resp = web.StreamResponse(headers={"Content-Type": "application/json", **headers})
            if mode == "chunked":
                resp.enable_chunked_encoding()
            else:
                resp.force_close()  # Connection: close, body until EOF
            await resp.prepare(request)
            data = json.dumps({"predictions": preds}).encode()
            await resp.write(data[:7])
            await resp.write(data[7:])
            await resp.write_eof()
            return resp
        return web.json_response({"predictions": preds}, headers=headers)

    async def torch_predict(self, request: web.Request) -> web.StreamResponse:
        if self.key is not None and request.headers.get("Authorization") != f"Bearer {self.key}":
            self.requests.append(("auth_refused", request.path, dict(request.headers)))
            return web.json_response(
                {
                    "code": self.refusal_status,
                    "type": "InvalidKeyException",
                    "message": "Token Authorization failed. Token either incorrect, expired, or not provided correctly",
                },
                status=self.refusal_status,
            )
        name = request.match_info["name"]
        model, backend = (name[:-4], "torch_ort") if name.endswith("_ort") else (name, "torch")
        return await self._answer(request, backend, model)

    async def tf_route(self, request: web.Request) -> web.StreamResponse:
        spec = request.match_info["spec"]
        if request.method == "GET":
            if self.modes.get("tf_status") == "loading":
                state = "LOADING"
            else:
                state = "AVAILABLE"
            headers = {"X-TF-Server": self.tf_header} if self.tf_header else {}
            return web.json_response({"model_version_status": [{"version": "1", "state": state}]}, headers=headers)
        model, _, verb = spec.partition(":")
        if verb != "predict":
            return web.json_response({"error": "bad verb"}, status=404)
        return await self._answer(request, "tf", model)

    async def ping(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "Healthy"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/predictions/{name}", self.torch_predict)
        app.router.add_get("/ping", self.ping)
        app.router.add_route("*", "/v1/models/{spec}", self.tf_route)
        return app


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[Fake]:
    fake = Fake(key_file=tmp_path / "key_file.json")
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.server = server
    try:
        yield fake
    finally:
        fake.release.set()
        await server.close()


@pytest.fixture
def settings_for(manifest_path: Path) -> Callable[..., Settings]:
    def make(fake: Fake | None, **overrides: Any) -> Settings:
        url = fake.url if fake else f"http://127.0.0.1:{free_port()}"
        # gRPC off unless a test asks for it: in-process apps must not take the default port 8001
        values: dict[str, Any] = {"manifest": manifest_path, "torch_url": url, "tf_url": url, "grpc_port": 0}
        values.update(overrides)
        return Settings(**values)

    return make


@contextlib.asynccontextmanager
async def gateway(settings: Settings, seed: int = 0) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """The app with its lifespan running, and an httpx client calling it in-process."""
    app = create_app(settings, rng=random.Random(seed))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client, app.state.plane


def instances(model: str, n: int, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    shape = MODELS[model]["input"]
    data: list[Any] = rng.uniform(-1, 1, size=(n, *shape)).round(3).tolist()
    return data
