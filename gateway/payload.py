"""Read a request body within the size limit, check it against the model, and prepare what is forwarded.

Instances are never parsed field by field by pydantic: the body is read raw, parsed once
with ``json``, checked with numpy (:mod:`services.common.validation`), and forwarded as
the original bytes when it holds nothing but ``instances``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import Request

from services.common.validation import InputError, get_instances, parse_json, to_array

from .errors import BodyTimeoutError, InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from .models import ModelInfo


@dataclass(frozen=True)
class Payload:
    """A checked request: what to send to a backend and what the gateway learnt from it."""

    body: bytes  # ``{"instances": [...]}``, as the backends take it
    array: np.ndarray  # float32 ``[N, *input_shape]``
    backend: str | None  # the body's ``backend`` member, if any

    @property
    def rows(self) -> int:
        return int(self.array.shape[0])


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


def _input_error(exc: InputError) -> InvalidInputError | PayloadTooLargeError:
    if exc.status == 413:
        return PayloadTooLargeError(exc.message)
    return InvalidInputError(exc.message)


def check_payload(raw: bytes, model: ModelInfo) -> Payload:
    """Parse and check ``raw`` against ``model`` (422 naming the expected shape and the bad instance)."""
    try:
        body: Any = parse_json(raw)
        instances = get_instances(body, model.name, model.input_shape, model.max_batch)
        array = to_array(
            instances,
            model.name,
            model.input_shape,
            model.max_batch,
            may_hold_bools=b"true" in raw or b"false" in raw,
        )
    except InputError as exc:
        raise _input_error(exc) from None
    backend = body.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise InvalidInputError(f'"backend" must be a string, got {json.dumps(backend)[:40]}')
    forward = raw if len(body) == 1 else json.dumps({"instances": instances}, separators=(",", ":")).encode()
    return Payload(body=forward, array=array, backend=backend)
