"""The compatible server's errors, each carrying TF Serving's status code.

TF Serving turns a ``tensorflow::Status`` into an HTTP status and ``{"error": msg}``
(REST) or into the same gRPC status code; one table here does both::

    ServingError(code, message)
      NOT_FOUND          404  unknown model or version, or no version loaded ("Servable not found ...")
      INVALID_ARGUMENT   400  malformed JSON, wrong keys, shape, dtype, unknown label/signature
      UNAVAILABLE        503  the batch queue is full (shed load, do not queue without bound)
      RESOURCE_EXHAUSTED 413  body over TF_API_MAX_BODY_BYTES (our limit; TF Serving has none)
      UNIMPLEMENTED      501  classify/regress (not served by the compatible server)
      INTERNAL           500  anything unexpected (logged with its traceback)
"""

from __future__ import annotations

from enum import Enum

import grpc


class Code(Enum):
    """A status code: (HTTP status, gRPC status code)."""

    NOT_FOUND = (404, grpc.StatusCode.NOT_FOUND)
    INVALID_ARGUMENT = (400, grpc.StatusCode.INVALID_ARGUMENT)
    UNAVAILABLE = (503, grpc.StatusCode.UNAVAILABLE)
    RESOURCE_EXHAUSTED = (413, grpc.StatusCode.RESOURCE_EXHAUSTED)
    UNIMPLEMENTED = (501, grpc.StatusCode.UNIMPLEMENTED)
    INTERNAL = (500, grpc.StatusCode.INTERNAL)

    @property
    def http(self) -> int:
        return self.value[0]

    @property
    def grpc(self) -> grpc.StatusCode:
        return self.value[1]


class ServingError(Exception):
    """A request failed; ``message`` is what the caller reads."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ServingError:
    """An INVALID_ARGUMENT error (HTTP 400)."""
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """A NOT_FOUND error (HTTP 404)."""
    return ServingError(Code.NOT_FOUND, message)
