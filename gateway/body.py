"""Read a request's body over HTTP: declared type, size limit, time limit.

The web side of :mod:`gateway.payload` (which checks what was read and imports no web
framework): the ``/v1`` and ``/v2`` routes read with these, then hand the bytes on.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from .errors import BodyTimeoutError, InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError


def check_content_type(request: Request) -> None:
    """415 unless the body is declared ``application/json`` (any charset)."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(f"Content-Type must be application/json, got {ctype or 'none'!r}")


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, refusing (413) before reading it when declared too big, or once it grows too big.

    A body that trickles in (slowloris) is cut off after ``timeout_s`` with 408.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidInputError(f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise PayloadTooLargeError(f"request body of {size} bytes exceeds the limit of {limit} bytes", limit=limit)
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes", limit=limit)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeoutError(f"request body not received within {timeout_s:g} s ({received} bytes came)") from None
    return b"".join(chunks)
