"""Optional API key on every route but ``/health/*`` and ``/v2/health/*``: ``X-API-Key`` or ``Authorization: Bearer``.

A pure ASGI middleware (no per-request dependency overhead), comparing in constant time.
"""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import UnauthorizedError, error_response

OPEN_PREFIXES = ("/health/", "/v2/health/")
#: Paths of the Open Inference Protocol, whose errors are ``{"error": ...}``
V2_PREFIX = "/v2"


def _presented(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"x-api-key":
            return bytes(value)
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return bytes(value[7:].strip())
    return None


def refusal(scope: Scope, key: bytes) -> Response | None:
    """The 401 answer for a request that does not carry ``key`` (None: let it through)."""
    path = str(scope.get("path", ""))
    if scope["type"] != "http" or path.startswith(OPEN_PREFIXES):
        return None
    presented = _presented(scope)
    if presented is not None and hmac.compare_digest(presented, key):
        return None
    reason = "missing" if presented is None else "wrong"
    error = UnauthorizedError(f"{reason} API key; send X-API-Key or Authorization: Bearer")
    if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
        return JSONResponse({"error": error.detail}, status_code=error.status, headers=error.headers())
    return error_response(error)


class ApiKeyMiddleware:
    """Answers 401 unless the request carries ``key``."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = refusal(scope, self.key)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)
