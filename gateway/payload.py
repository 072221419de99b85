"""Read a request body within the size limit, check it against the model, and prepare what is forwarded.

Instances are never parsed field by field by pydantic: the body is read raw, parsed once
with ``json``, checked with numpy against the model's contract (:mod:`contract.tensors`),
and forwarded as the original bytes when it holds nothing but the tensors
(``instances`` or ``inputs``), so every backend gets the bytes the caller sent.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import numpy as np
from starlette.requests import Request

from contract.manifest import ModelEntry
from contract.tensors import Format, InputError, parse_json, read_request

from .errors import BodyTimeoutError, InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError

#: Members of a body that are tensors (forwarded); anything else is for the gateway.
TENSOR_KEYS = ("instances", "inputs")


@dataclass(frozen=True)
class Payload:
    """A checked request: what to send to a backend and what the gateway learnt from it."""

    body: bytes  # the tensors as JSON (``instances`` or ``inputs``), as the backends take them
    arrays: dict[str, np.ndarray]  # one per input, in the contract's dtype
    rows: int
    format: Format
    backend: str | None  # the body's ``backend`` member, if any
    #: set when ``body`` is binary tensors (the Open Inference Protocol's layout: a JSON header of
    #: this many bytes, then raw tensors), which TorchServe's handler takes; TF gets ``arrays`` over gRPC
    header_length: int | None = None

    @property
    def binary(self) -> bool:
        """Whether the request came as (and travels on as) binary tensors, never JSON."""
        return self.header_length is not None


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


def check_payload(raw: bytes, model: ModelEntry) -> Payload:
    """Parse and check ``raw`` against ``model`` (422 naming the expected shape and the bad instance)."""
    try:
        request = read_request(parse_json(raw), model, may_hold_bools=b"true" in raw or b"false" in raw)
    except InputError as exc:
        if exc.status == 413:
            raise PayloadTooLargeError(exc.message) from None
        raise InvalidInputError(exc.message) from None
    body = request.body
    backend = body.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise InvalidInputError(f'"backend" must be a string, got {json.dumps(backend)[:40]}')
    tensors = {k: body[k] for k in TENSOR_KEYS if k in body}
    forward = raw if len(tensors) == len(body) else json.dumps(tensors, separators=(",", ":")).encode()
    return Payload(body=forward, arrays=request.arrays, rows=request.rows, format=request.format, backend=backend)
