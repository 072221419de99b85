"""Optional API key on every route but ``/health/*`` and ``/v2/health/*``: ``X-API-Key`` or ``Authorization: Bearer``.

A pure ASGI middleware (no per-request dependency overhead), comparing in constant time
(:func:`gateway.credentials.key_refusal`, which the gRPC service asks too). It wraps every
route, the inference edge (:mod:`gateway.edge`) included.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .credentials import HOW, key_refusal
from .errors import UnauthorizedError
from .handlers import error_response, is_v2

OPEN_PREFIXES = ("/health/", "/v2/health/")


def refusal(scope: Scope, key: bytes) -> Response | None:
    """The 401 answer for a request that does not carry ``key`` (None: let it through)."""
    path = str(scope.get("path", ""))
    if scope["type"] != "http" or path.startswith(OPEN_PREFIXES):
        return None
    reason = key_refusal(scope.get("headers", []), key)
    if reason is None:
        return None
    return error_response(UnauthorizedError(f"{reason} API key; send {HOW}"), v2=is_v2(path))


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
