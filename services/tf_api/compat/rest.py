"""TF Serving's REST API on aiohttp: thin routes over the registry and the data plane.

Paths (TF Serving's, case-insensitive like its regexes)::

    POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]             version status
    GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata    signature defs
    GET  {monitoring path}                                        Prometheus text

Errors are ``{"error": "..."}`` with the status of :mod:`.errors`. Bodies are read
with a limit (413 before reading when Content-Length is already too large). aiohttp
rather than uvicorn: the gRPC server (grpc.aio) shares this asyncio loop, and aiohttp
served small JSON bodies fastest when it was measured for this server (a bare aiohttp proxy did
1,625 req/s where the same proxy on FastAPI + httpx did 177-240; docs/benchmarks.md, gateway).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from google.protobuf import json_format

from services.tf_api.compat import SERVER_HEADER, SERVER_NAME
from services.tf_api.compat.batching import Timing
from services.tf_api.compat.dataplane import DataPlane
from services.tf_api.compat.errors import Code, ServingError, invalid
from services.tf_api.compat.jsontensor import parse_body, render, to_inputs
from services.tf_api.compat.metrics import Metrics
from services.tf_api.compat.servables import ModelRegistry
from services.tf_api.config import MonitoringSettings

log = logging.getLogger(__name__)

_SPEC = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
PREDICT_RE = re.compile(_SPEC + r":(?P<method>[^/:]+)", re.IGNORECASE)
STATUS_RE = re.compile(_SPEC + r"(?P<metadata>/metadata)?", re.IGNORECASE)
#: Bodies larger than this are parsed and rendered in a thread, not on the event loop.
THREAD_BODY_BYTES = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class State:
    """What the routes need; plain objects, built by the server."""

    def __init__(self, registry: ModelRegistry, dataplane: DataPlane, metrics: Metrics, max_body_bytes: int) -> None:
        self.registry = registry
        self.dataplane = dataplane
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes


_STATE = web.AppKey("state", State)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise invalid(f"Failed to convert version: {text} to numeric.")
    return int(text)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing (413) one larger than ``limit`` without reading all of it."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ServingError(
            Code.RESOURCE_EXHAUSTED,
            f"Request body of {declared} bytes exceeds the limit of {limit} bytes (TF_API_MAX_BODY_BYTES)",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise ServingError(
                Code.RESOURCE_EXHAUSTED, f"Request body exceeds the limit of {limit} bytes (TF_API_MAX_BODY_BYTES)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def predict(request: web.Request) -> web.Response:
    """POST .../{name}[:predict]: TF Serving's predict, row or columnar."""
    state = request.app[_STATE]
    match = PREDICT_RE.fullmatch(request.path)
    if match is None or match["method"].lower() != "predict":
        if match is not None and match["method"].lower() in ("classify", "regress"):
            raise ServingError(Code.UNIMPLEMENTED, f"{match['method']} is not served by {SERVER_NAME}; use predict")
        raise invalid(f"Malformed request: POST {request.path}")
    started = time.perf_counter()
    raw = await read_body(request, state.max_body_bytes)
    big = len(raw) > THREAD_BODY_BYTES
    body = await asyncio.to_thread(parse_body, raw) if big else parse_body(raw)
    servable = state.registry.resolve(match["name"], _version(match["version"]), match["label"])
    signature = servable.signature(body.signature_name)
    inputs = await asyncio.to_thread(to_inputs, body, signature) if big else to_inputs(body, signature)
    parsed = time.perf_counter()
    timing = Timing()
    outputs = await state.dataplane.predict(servable, signature, inputs, "REST", timing)
    predicted = time.perf_counter()
    rows = next(iter(outputs.values())).size if outputs else 0
    payload = await asyncio.to_thread(render, outputs, body.format) if rows > 4096 else render(outputs, body.format)
    done = time.perf_counter()
    phases = {
        "total": done - started,
        "pre": parsed - started,
        "inference": timing.inference_s,
        "post": done - predicted,
    }
    for phase, seconds in phases.items():
        state.metrics.phases.labels(servable.model, phase).observe(seconds * 1e6)
    # where the time went, for a caller that looks (the load tests read the metrics instead)
    server_timing = (
        f"queue;dur={timing.queue_s * 1e3:.3f}, compute;dur={timing.compute_s * 1e3:.3f}, "
        f"total;dur={phases['total'] * 1e3:.3f}"
    )
    return web.Response(body=payload, content_type="application/json", headers={"Server-Timing": server_timing})


async def model_get(request: web.Request) -> web.Response:
    """GET .../{name}[/versions/{v}|/labels/{l}][/metadata]: version status or signature metadata."""
    state = request.app[_STATE]
    match = STATUS_RE.fullmatch(request.path)
    if match is None and request.path.rstrip("/").lower() == "/v1/models":
        raise invalid("Missing model name in request.")
    if match is None:
        raise invalid(f"Malformed request: GET {request.path}")
    name, version, label = match["name"], _version(match["version"]), match["label"]
    if match["metadata"]:
        servable = state.registry.resolve(name, version, label)
        signature_def = json_format.MessageToDict(
            servable.signature_defs, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        spec = {"name": name, "signature_name": "", "version": str(servable.version)}
        return _json({"model_spec": spec, "metadata": {"signature_def": signature_def}})
    versions = state.registry.status(name, version, label)
    return _json(
        {
            "model_version_status": [
                {
                    "version": str(v.version),
                    "state": v.state,
                    "status": {"error_code": "OK" if not v.error else "UNKNOWN", "error_message": v.error},
                }
                for v in versions
            ]
        }
    )


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServingError as exc:
        return _json({"error": exc.message}, exc.code.http)
    except web.HTTPException as exc:
        return _json({"error": exc.reason}, exc.status)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _json({"error": "Internal error; see the tf_api log"}, 500)


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[SERVER_HEADER] = SERVER_NAME


def create_app(state: State, monitoring: MonitoringSettings) -> web.Application:
    """The REST application; ``state`` holds the registry, data plane and metrics."""
    app = web.Application(middlewares=[_errors], client_max_size=state.max_body_bytes)
    app[_STATE] = state
    app.on_response_prepare.append(_server_header)
    if monitoring.enable:

        async def prometheus(request: web.Request) -> web.Response:
            """Prometheus metrics."""
            return web.Response(body=state.metrics.exposition(), content_type="text/plain", charset="utf-8")

        app.router.add_get(monitoring.path, prometheus)
    app.router.add_post("/v1/{tail:.*}", predict)
    app.router.add_get("/v1/{tail:.*}", model_get)
    return app
