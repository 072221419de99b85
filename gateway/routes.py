"""Thin HTTP adapters over :class:`~gateway.dataplane.DataPlane`: parse, call, answer."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from contract.manifest import ModelEntry

from .body import check_content_type, read_body
from .dataplane import Answer, DataPlane
from .errors import UnknownBackendError
from .metrics import CONTENT_TYPE_LATEST
from .payload import Payload, check_payload
from .schemas import ERRORS, CompareRequest, CompareResponse, PredictRequest, PredictResponse, json_body

router = APIRouter()
#: declared for the docs only: reading it by hand skips FastAPI's per-request dependency solving
BACKEND_HEADER = {
    "name": "X-Backend",
    "in": "header",
    "required": False,
    "description": "backend override; must equal the body's backend when both are given",
    "schema": {"type": "string", "enum": ["torch", "torch_ort", "triton", "triton_ort", "tf"]},
}


def _plane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.plane
    return plane


async def _read(request: Request, plane: DataPlane, model: str, admit: bool = False) -> tuple[ModelEntry, Payload]:
    info = plane.model(model)
    check_content_type(request)
    if admit:  # shed before the body is read or parsed: a refusal costs no parse (and lingers, see .server)
        plane.admit(model, request.headers.get("x-backend"))
    raw = await read_body(request, plane.settings.max_body_bytes, plane.settings.body_timeout_s)
    return info, check_payload(raw, info)


def _requested(payload: Payload, header: str | None) -> str | None:
    if payload.backend and header and payload.backend != header:
        raise UnknownBackendError(f"body asks for backend {payload.backend[:32]!r} but X-Backend says {header[:32]!r}")
    return payload.backend or header


def _answer(model: str, answer: Answer, started: float) -> Response:
    body = orjson.dumps({"model": model, "backend": answer.backend, "server": answer.server, **answer.answer})
    backend_ms = answer.latency_s * 1000
    gateway_ms = max(0.0, (time.perf_counter() - started) * 1000 - backend_ms)
    headers = {
        "X-Backend": answer.backend,
        "Server-Timing": f"backend;dur={backend_ms:.3f}, gateway;dur={gateway_ms:.3f}",
    }
    return Response(body, media_type="application/json", headers=headers)


@router.post(
    "/v1/models/{model}/predict",
    openapi_extra={**json_body(PredictRequest), "parameters": [BACKEND_HEADER]},
    responses={200: {"model": PredictResponse}, **ERRORS},
)
async def predict(model: str, request: Request) -> Response:
    """Route one request by the model's policy, or to the backend named in the body or X-Backend."""
    plane = _plane(request)
    with plane.request(model) as tally:
        info, payload = await _read(request, plane, model, admit=True)
        answer = await plane.predict(info, payload, _requested(payload, request.headers.get("x-backend")))
        tally.ok(answer.backend)
    return _answer(model, answer, tally.started)


@router.post(
    "/v1/models/{model}/compare",
    openapi_extra=json_body(CompareRequest),
    responses={200: {"model": CompareResponse}, **ERRORS},
)
async def compare(model: str, request: Request) -> JSONResponse:
    """Send the same input to every backend serving the model, concurrently, and report their agreement."""
    plane = _plane(request)
    info, payload = await _read(request, plane, model)
    return JSONResponse(await plane.compare(info, payload))


@router.get("/v1/models")
async def models(request: Request) -> dict[str, Any]:
    """Models, their shapes and policy, and each serving backend's readiness and server."""
    plane = _plane(request)
    readiness = await plane.readiness()
    shadows = {name: config.shadow for name, config in plane.configs.items()}
    return {
        "models": {
            name: {
                **info.public(),
                "policy": plane.policies[name].describe(),
                "shadow": shadow.model_dump() if (shadow := shadows[name]) else None,
                "backends": {
                    b: {"ready": r.ready, "server": r.server, "detail": r.detail} for b, r in readiness[name].items()
                },
            }
            for name, info in plane.models.items()
        },
        "backends": {name: plane.describe_backend(name) for name in plane.clients},
    }


@router.get("/v1/stats")
async def stats(request: Request) -> dict[str, object]:
    """Per model × backend: count, errors, throughput and latency percentiles (window and since reset)."""
    return await _plane(request).stats_snapshot()


@router.post("/v1/stats/reset")
async def stats_reset(request: Request) -> dict[str, str]:
    """Forget every recorded latency and error."""
    await _plane(request).reset_stats()
    return {"status": "reset"}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus exposition of the gateway's counters and histograms."""
    return Response(_plane(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up (no backend is asked)."""
    return {"status": "live"}


@router.get("/health/ready", responses={503: {"description": "some model has no ready backend"}})
async def ready(request: Request) -> JSONResponse:
    """Ready when every model has at least one ready backend; lists each backend's state."""
    readiness = await _plane(request).readiness()
    models = {m: {b: r.ready for b, r in rs.items()} for m, rs in readiness.items()}
    ok = all(any(rs.values()) for rs in models.values())
    body: dict[str, object] = {"status": "ready" if ok else "not ready", "models": models}
    if not ok:
        body["detail"] = "some model has no ready backend"
    return JSONResponse(body, status_code=200 if ok else 503)
