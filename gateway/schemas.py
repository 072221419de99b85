"""Request and response models for the OpenAPI schema only.

The predict and compare routes read the raw body and validate it with numpy; these
models document (and let schemathesis fuzz) exactly what they accept and answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .config import BackendName

_INSTANCES = "row format: instances, each of the model's input shape (objects keyed by input name for several)"
_INPUTS = "columnar format: the inputs with the batch axis first (an object keyed by input name for several)"


class PredictRequest(BaseModel):
    """TF Serving's row or columnar format, as TF Serving and the TorchServe handler take it: send one of the two."""

    instances: list[Any] | None = Field(default=None, min_length=1, description=_INSTANCES)
    inputs: dict[str, Any] | list[Any] | None = Field(default=None, description=_INPUTS)
    backend: BackendName | None = Field(default=None, description="override the model's routing policy")


class CompareRequest(BaseModel):
    instances: list[Any] | None = Field(default=None, min_length=1, description=_INSTANCES)
    inputs: dict[str, Any] | list[Any] | None = Field(default=None, description=_INPUTS)


_SERVER = "which server answered: torchserve, duoserve-compat (TF) or tensorflow_model_server (TF)"


class PredictResponse(BaseModel):
    model: str
    backend: BackendName
    server: str = Field(description=_SERVER)
    predictions: list[Any] | None = Field(default=None, description="for a row-format request")
    outputs: dict[str, Any] | list[Any] | None = Field(default=None, description="for a columnar request")


class BackendOutcome(BaseModel):
    backend: BackendName
    server: str | None = None
    latency_ms: float | None = None
    predictions: list[Any] | None = None
    outputs: dict[str, Any] | list[Any] | None = None
    error: dict[str, Any] | None = None


class CompareResponse(BaseModel):
    model: str
    results: list[BackendOutcome]
    max_abs_diff: float | None
    argmax_agreement: float | None
    pairs: list[dict[str, Any]]


class ErrorBody(BaseModel):
    detail: str


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "unknown backend or bad request",
        401: "missing or wrong API key",
        404: "unknown model",
        408: "request body not received in time",
        413: "body or instance count too large",
        415: "not application/json",
        422: "input does not match the model",
        502: "a backend answered badly",
        503: "backend unavailable or shedding load (Retry-After)",
        504: "backend timeout",
    }.items()
}
