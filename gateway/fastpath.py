"""The inference routes without FastAPI's routing: ``POST /v1/models/{m}/predict`` and ``/v2/models/{m}/infer``.

A pure ASGI middleware inside the app (after the server-error middleware and the API key
check, before FastAPI's exception middleware, router and dependency solving) recognises
the two inference paths by their shape and calls the very same route functions
(:func:`gateway.routes.predict`, :func:`gateway.protocol.v2.rest.infer`) with a Starlette
``Request``; errors become the same answers (``/v1``: :func:`gateway.errors.error_response`;
``/v2`` answers its own). Every other path goes through FastAPI unchanged, and the routes stay
registered there, so the OpenAPI schema is what it was. Why: under load FastAPI's layers
before the route took about a sixth of the gateway's CPU (py-spy; ``docs/benchmarks.md``,
"One hop").
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import GatewayError, error_response
from .protocol.v2.rest import infer
from .routes import predict

_V1 = "/v1/models/"
_V2 = "/v2/models/"


class FastPath:
    """Dispatch the inference POSTs straight to their route functions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_V1) and path.endswith("/predict"):
                model = path[len(_V1) : -len("/predict")]
                if model and "/" not in model:
                    try:
                        response = await predict(model, Request(scope, receive))
                    except GatewayError as exc:
                        response = error_response(exc)
                    await response(scope, receive, send)
                    return
            elif path.startswith(_V2) and path.endswith("/infer"):
                parts = path[len(_V2) : -len("/infer")].split("/")
                if len(parts) == 1 and parts[0]:
                    await (await infer(parts[0], Request(scope, receive)))(scope, receive, send)
                    return
                if len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
                    await (await infer(parts[0], Request(scope, receive), parts[2]))(scope, receive, send)
                    return
        await self.app(scope, receive, send)
