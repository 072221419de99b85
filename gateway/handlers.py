"""Every failure to its HTTP answer: the one error mapper of the REST side.

Used by FastAPI's exception handlers (:func:`add_exception_handlers`), by the inference
edge (:mod:`gateway.edge`), by the Open Inference Protocol's routes
(:mod:`gateway.protocol.v2.rest`) and by the API-key check (:mod:`gateway.security`), so a
failure reads the same whichever layer caught it. The shape follows the path::

    /v1 ... and the rest    {"detail": "...", ...extra}   the status of gateway.errors
    /v2 ...                 {"error": "..."}              the same, but 422 answers 400
    anything unexpected     "internal error" in the path's shape, 500, traceback logged
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from .errors import GatewayError

log = logging.getLogger("gateway")
#: The Open Inference Protocol's paths, whose errors are ``{"error": ...}``
V2_PREFIX = "/v2"
#: ``/v1`` answers a failed contract check with 422; the protocol with 400.
_V2_STATUS = {422: 400}


def is_v2(path: str) -> bool:
    """Whether ``path`` is one of the Open Inference Protocol's (its errors are ``{"error": ...}``)."""
    return path == V2_PREFIX or path.startswith("/v2/")


def error_response(exc: GatewayError, *, v2: bool = False) -> JSONResponse:
    """The JSON answer for a deliberate error: ``/v1``'s body, or the protocol's (``v2``)."""
    if v2:
        status = _V2_STATUS.get(exc.status, exc.status)
        return JSONResponse({"error": exc.detail}, status_code=status, headers=exc.headers())
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


def failure_response(exc: Exception, *, v2: bool, where: str) -> Response:
    """The answer for any failure: a deliberate error's, or a logged 500 (``where``: for the log line)."""
    if isinstance(exc, GatewayError):
        return error_response(exc, v2=v2)
    log.error("unhandled error on %s", where, exc_info=exc)
    return JSONResponse({"error" if v2 else "detail": "internal error"}, status_code=500)


def request_failure(request: Request, exc: Exception) -> Response:
    """:func:`failure_response` for a failure while answering ``request``."""
    path: str = request.scope["path"]
    return failure_response(exc, v2=is_v2(path), where=f"{request.method} {path}")


async def _failure(request: Request, exc: Exception) -> Response:
    return request_failure(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
    return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)


def add_exception_handlers(app: FastAPI) -> None:
    """Map every error to the one body shape; anything unexpected becomes a logged 500."""
    app.add_exception_handler(GatewayError, _failure)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _failure)
