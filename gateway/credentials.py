"""Which API key a request presented, for REST headers and gRPC metadata alike.

A key comes as ``x-api-key: KEY`` or ``authorization: Bearer KEY`` (the first of either
counts). Compared in constant time. No web framework here: :mod:`gateway.security` asks
on REST, :mod:`gateway.protocol.v2.grpc_server` on gRPC.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

#: What a refusal tells the caller to send (REST headers; gRPC metadata by the same names)
HOW = "X-API-Key or Authorization: Bearer"


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def presented_key(headers: Iterable[tuple[str | bytes, str | bytes]]) -> bytes | None:
    """The key in ``headers`` (lower-case names: ASGI headers or gRPC metadata), or None when there is none."""
    for name, value in headers:
        if name in (b"x-api-key", "x-api-key"):
            return _bytes(value)
        if name in (b"authorization", "authorization"):
            raw = _bytes(value)
            if raw[:7].lower() == b"bearer ":
                return raw[7:].strip()
    return None


def key_refusal(headers: Iterable[tuple[str | bytes, str | bytes]], key: bytes) -> str | None:
    """Why ``headers`` do not carry ``key`` (``"missing"`` or ``"wrong"``), or None when they do."""
    presented = presented_key(headers)
    if presented is not None and hmac.compare_digest(presented, key):
        return None
    return "missing" if presented is None else "wrong"
