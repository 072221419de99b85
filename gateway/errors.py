"""Every failure the gateway answers, and the status it answers with.

One body shape everywhere: ``{"detail": "<message>", ...extra}``. The status says whose
fault it is::

    GatewayError ...................................... 500  (never raised bare)
    ├── RequestError .................................. 400  the caller's request
    │   ├── UnknownBackendError ....................... 400  backend not known / not serving the model
    │   ├── UnauthorizedError ......................... 401  missing or wrong API key (WWW-Authenticate)
    │   ├── UnknownModelError ......................... 404
    │   ├── BodyTimeoutError .......................... 408  body not received within the body timeout
    │   ├── PayloadTooLargeError ...................... 413  body or instance count over the limit
    │   ├── UnsupportedMediaTypeError ................. 415  not application/json
    │   └── InvalidInputError ......................... 422  fails the manifest's shape/dtype check
    └── BackendError .................................. 502  carries ``backend`` (also in the body)
        ├── BackendRejectedError ...................... 4xx  the backend's own status and message
        ├── BadBackendResponseError ................... 502  non-JSON, no predictions, wrong shape,
        │   │                                                5xx, or TorchServe refused a fresh token
        │   └── BackendCutOffError .................... 502  the connection broke in the middle of the answer
        ├── BackendTimeoutError ....................... 504  no answer within the read timeout
        └── BackendUnavailableError ................... 503 + Retry-After  refused/reset before answering
            ├── BackendOverloadedError ................ 503 + Retry-After  our in-flight limit, or its 503/429
            └── CircuitOpenError ...................... 503 + Retry-After  breaker open; not even tried

    anything else ..................................... 500  {"detail": "internal error"}, traceback logged

Inference is a pure function, so a request may be repeated elsewhere without doubling any
effect. The data plane moves on to the policy's next backend after a
``BackendUnavailableError`` (refused or reset before answering; shed or circuit open, which
never reached the backend) and after a ``BackendCutOffError`` (cut off mid-answer); the
ones that reached a backend (``retryable``) are retries, bounded by the retry budget.

This module imports no web framework: the data plane raises these errors, and
:mod:`gateway.handlers` turns them into HTTP answers (REST) while
:mod:`gateway.protocol.v2.grpc_server` turns them into status codes (gRPC).
"""

from __future__ import annotations

import math


class GatewayError(Exception):
    """Base of every error the gateway answers deliberately."""

    status = 500
    #: short, stable name used in stats and metrics ("outcome" label)
    kind = "internal"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, object]:
        return {"detail": self.detail, **self.extra}


class RequestError(GatewayError):
    status = 400
    kind = "bad_request"


class UnknownBackendError(RequestError):
    status = 400
    kind = "unknown_backend"


class UnauthorizedError(RequestError):
    status = 401
    kind = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class UnknownModelError(RequestError):
    status = 404
    kind = "unknown_model"


class BodyTimeoutError(RequestError):
    status = 408
    kind = "body_timeout"


class PayloadTooLargeError(RequestError):
    status = 413
    kind = "too_large"

    def headers(self) -> dict[str, str]:
        # a body over the byte limit is not wanted: close after a lingering read (gateway.server)
        return {"Connection": "close"} if "limit" in self.extra else {}


class UnsupportedMediaTypeError(RequestError):
    status = 415
    kind = "media_type"


class InvalidInputError(RequestError):
    status = 422
    kind = "invalid_input"


class BackendError(GatewayError):
    """A backend failed; ``backend`` names it (also in the body)."""

    status = 502
    kind = "backend_error"
    #: counts towards opening the circuit breaker
    connection_failure = False
    #: a transport failure after the request went out: moving on to another backend is a budgeted retry
    retryable = False

    def __init__(self, detail: str, backend: str, **extra: object) -> None:
        super().__init__(detail, backend=backend, **extra)
        self.backend = backend

    def headers(self) -> dict[str, str]:
        return {"X-Backend": self.backend}


class BackendRejectedError(BackendError):
    """The backend refused the input; its status (a 4xx) and message are passed on."""

    kind = "backend_rejected"

    def __init__(self, detail: str, backend: str, status: int) -> None:
        super().__init__(detail, backend)
        self.status = status


class BadBackendResponseError(BackendError):
    status = 502
    kind = "bad_response"


class BackendCutOffError(BadBackendResponseError):
    """The backend began to answer, then the connection broke (it stopped or was killed)."""

    kind = "cut_off"
    #: a transport failure after the request went out: worth a retry elsewhere, and counts for the breaker
    retryable = True
    connection_failure = True


class BackendTimeoutError(BackendError):
    status = 504
    kind = "timeout"
    connection_failure = True


class BackendUnavailableError(BackendError):
    """Failed before answering: connection refused or reset, shed, or breaker open."""

    status = 503
    kind = "unavailable"
    #: counts towards opening the circuit breaker (a refused or reset connection does)
    connection_failure = True
    #: the request went out (or tried to): moving on is a retry, paid from the retry budget
    retryable = True

    def __init__(self, detail: str, backend: str, retry_after_s: float = 1.0) -> None:
        super().__init__(detail, backend)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class BackendOverloadedError(BackendUnavailableError):
    """Our in-flight limit shed it (never sent), or the backend itself answered 503/429."""

    kind = "overloaded"
    connection_failure = False
    retryable = False


class CircuitOpenError(BackendUnavailableError):
    kind = "circuit_open"
    connection_failure = False
    retryable = False
