"""The inference routes served ahead of FastAPI's routing: a pure ASGI middleware, innermost of the app's own.

``POST /v1/models/{model}/predict`` and ``POST /v2/models/{model}[/versions/{v}]/infer``
are recognised by the routes FastAPI itself declared for them (``route.matches``: the same
paths, the same parameters, nothing parsed by hand) and their endpoint functions are
called straight away with a Starlette ``Request``. Everything the app's middleware does
happens first (the API key, :mod:`gateway.security`; any middleware added later wraps this
one too), and failures become the answers FastAPI's exception handlers give, from the same
mapper (:func:`gateway.handlers.request_failure`). Every other request, and every route's
OpenAPI entry, is FastAPI's as before.

Why it exists: under load FastAPI's routing and dependency solving around the route were
the largest part of the gateway's own CPU (py-spy); dispatching ahead of them took the
gateway from 359 to 172 µs of CPU per request in front of a trivial backend, with the
backend client's changes of the same commit series (``docs/benchmarks.md``, "One hop").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from .handlers import request_failure

Endpoint = Callable[..., Awaitable[Response]]


class InferenceEdge:
    """Calls the routes of ``routers`` whose endpoint is one of ``endpoints`` directly; passes the rest on.

    ``routers``: the routers the app includes as they are (no prefix added at inclusion), so their
    routes' paths are the app's; built with the middleware stack, at the app's first request.
    """

    def __init__(self, app: ASGIApp, routers: Collection[Router], endpoints: Collection[Endpoint]) -> None:
        self.app = app
        self.routes = [
            r for router in routers for r in router.routes if isinstance(r, APIRoute) and r.endpoint in endpoints
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    await self._dispatch(route.endpoint, child["path_params"], scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _dispatch(endpoint: Endpoint, params: dict[str, Any], scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await endpoint(request=request, **params)
        except Exception as exc:  # noqa: BLE001 -- as FastAPI's handlers: the error's answer, or a logged 500
            response = request_failure(request, exc)
        await response(scope, receive, send)
