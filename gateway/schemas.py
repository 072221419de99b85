"""Request and response models for the OpenAPI schema only.

The predict and compare routes read the raw body and validate it with numpy; these
models document (and let schemathesis fuzz) exactly what they accept and answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .config import BackendName


class PredictRequest(BaseModel):
    """Row format, as TF Serving and the TorchServe handler take it."""

    instances: list[Any] = Field(min_length=1, description="instances, each of the model's input shape")
    backend: BackendName | None = Field(default=None, description="override the model's routing policy")


class CompareRequest(BaseModel):
    instances: list[Any] = Field(min_length=1, description="instances, each of the model's input shape")


class PredictResponse(BaseModel):
    model: str
    backend: BackendName
    server: str = Field(description="which server answered: torchserve, duoserve-compat, tensorflow-serving, tf-grpc")
    predictions: list[Any]


class BackendOutcome(BaseModel):
    backend: BackendName
    server: str | None = None
    latency_ms: float | None = None
    predictions: list[Any] | None = None
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
