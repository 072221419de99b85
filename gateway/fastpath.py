"""The inference routes ahead of FastAPI's stack: ``POST /v1/models/{m}/predict`` and ``/v2/models/{m}/infer``.

The app (:class:`GatewayApp`, a FastAPI) recognises the two inference paths by their shape
before its middleware and router run, checks the API key the same way the middleware does
(:func:`gateway.security.refusal`), and calls the very same route functions
(:func:`gateway.routes.predict`, :func:`gateway.protocol.v2.rest.infer`) with a Starlette
``Request``; errors become the same answers (``/v1``: :func:`gateway.errors.error_response`,
anything unexpected a logged 500; ``/v2`` answers its own). Every other path goes through
FastAPI unchanged, and the routes stay registered there, so the OpenAPI schema is what it
was. Why: under load FastAPI's middleware, routing and dependency solving around the route
were the largest part of the gateway's own CPU (py-spy); dispatching ahead of them took the
gateway from 359 to 172 µs of CPU per request in front of a trivial backend, with the backend
client's changes of the same commit series (``docs/benchmarks.md``, "One hop").
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .errors import GatewayError, error_response, internal_error
from .protocol.v2.rest import infer
from .routes import predict
from .security import refusal

_V1 = "/v1/models/"
_V2 = "/v2/models/"


class GatewayApp(FastAPI):
    """FastAPI, with the inference POSTs dispatched straight to their route functions."""

    #: ``GATEWAY_API_KEY`` (None: no key), checked here as :class:`~gateway.security.ApiKeyMiddleware` does
    api_key: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(_V1) and path.endswith("/predict"):
                model = path[len(_V1) : -len("/predict")]
                if model and "/" not in model:
                    await self._v1(model, scope, receive, send)
                    return
            elif path.startswith(_V2) and path.endswith("/infer"):
                parts = path[len(_V2) : -len("/infer")].split("/")
                if (len(parts) == 1 and parts[0]) or (len(parts) == 3 and parts[0] and parts[1] == "versions"):
                    await self._v2(parts[0], parts[2] if len(parts) == 3 else None, scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    async def _v1(self, model: str, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        response = refusal(scope, self.api_key) if self.api_key is not None else None
        if response is None:
            request = Request(scope, receive)
            try:
                response = await predict(model, request)
            except GatewayError as exc:
                response = error_response(exc)
            except Exception as exc:  # noqa: BLE001 -- as FastAPI's catch-all: a logged 500
                response = internal_error(request, exc)
        await response(scope, receive, send)

    async def _v2(self, model: str, version: str | None, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        response = refusal(scope, self.api_key) if self.api_key is not None else None
        if response is None:
            response = await infer(model, Request(scope, receive), version)  # answers its own errors
        await response(scope, receive, send)
