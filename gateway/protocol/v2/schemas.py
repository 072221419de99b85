"""The Open Inference Protocol's REST bodies, for the OpenAPI document only.

The routes read raw bodies (:mod:`contract.oip` checks them against the model's contract),
and ``/v2/models/{m}/infer`` is even dispatched ahead of FastAPI's routing (:mod:`gateway.edge`):
these models describe what the routes take and answer, so ``/openapi.json``, ``/docs`` and
schemathesis know the v2 surface, without changing how a request is served. Names are the
protocol's (``name``, ``shape``, ``datatype``, ``parameters``, ``binary_data_size``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Datatype = Literal["FP32", "FP16", "INT64", "INT32", "BOOL"]
_DATA = "the tensor's values, flat in row-major order or nested as its shape; absent with binary_data_size"
_BACKEND = "backend override (torch, torch_ort, triton, triton_ort or tf); must equal X-Backend when both are given"


class V2Error(BaseModel):
    """Every v2 failure: the protocol's error body."""

    error: str


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int] = Field(description="-1: the batch axis and dynamic axes")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InputParameters(BaseModel):
    binary_data_size: int | None = Field(
        default=None, ge=0, description="bytes of this tensor in the binary part of the body (binary extension)"
    )


class InferInput(BaseModel):
    name: str
    shape: list[int] = Field(description="the batch axis first")
    datatype: str = Field(description="FP32, FP16, INT64, INT32 or BOOL, as the model's metadata says")
    parameters: InputParameters | None = None
    data: list[Any] | None = Field(default=None, description=_DATA)


class OutputParameters(BaseModel):
    binary_data: bool | None = Field(default=None, description="answer this output in the binary part")


class RequestedOutput(BaseModel):
    name: str
    parameters: OutputParameters | None = None


class RequestParameters(BaseModel):
    backend: str | None = Field(default=None, description=_BACKEND)
    binary_data_output: bool | None = Field(default=None, description="every output in the binary part")


class InferRequest(BaseModel):
    """A JSON inference request; with binary tensors, this is the JSON header before the raw bytes."""

    id: str | None = None
    parameters: RequestParameters | None = None
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = Field(default=None, description="which outputs, in which order")


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = Field(default=None, description="binary_data_size in a binary answer")
    data: list[Any] | None = Field(default=None, description="absent when the output is in the binary part")


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="backend and server that answered")
    outputs: list[OutputTensor]


HEADER_LENGTH_PARAMETER: dict[str, Any] = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "binary tensor extension: the length of the JSON header that starts the body; "
    "without it the body is JSON only",
    "schema": {"type": "integer", "minimum": 0},
}
BACKEND_PARAMETER: dict[str, Any] = {
    "name": "X-Backend",
    "in": "header",
    "required": False,
    "description": _BACKEND,
    "schema": {"type": "string", "enum": ["torch", "torch_ort", "triton", "triton_ort", "tf"]},
}
_BINARY = {"type": "string", "format": "binary"}


def _inline(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place: a ``#/$defs/...`` reference inside an
    OpenAPI document would point at the document's root, where nothing is."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve({**defs[ref.removeprefix("#/$defs/")], **{k: v for k, v in node.items() if k != "$ref"}})
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        400: "bad request: the input does not match the model, bad JSON or binary layout, unknown backend",
        401: "missing or wrong API key",
        404: "unknown model or version",
        408: "request body not received in time",
        413: "body or batch too large",
        415: "a compressed body (Content-Encoding)",
        502: "a backend answered badly",
        503: "backend unavailable or shedding load (Retry-After)",
        504: "backend timeout",
    }
    return {status: {"model": V2Error, "description": texts[status]} for status in statuses}


READ_ERRORS = _errors(401, 404)
INFER_ERRORS = _errors(400, 401, 404, 408, 413, 415, 502, 503, 504)
#: ``/v2/models/{m}/infer``: a JSON body, or the binary extension's JSON header + raw tensors; the same two answers.
INFER_EXTRA: dict[str, Any] = {
    "parameters": [HEADER_LENGTH_PARAMETER, BACKEND_PARAMETER],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(InferRequest)},
            "application/octet-stream": {
                "schema": {
                    **_BINARY,
                    "description": "binary tensor extension: an InferRequest as JSON "
                    "(Inference-Header-Content-Length bytes), then each input's raw little-endian bytes "
                    "in the order of the inputs",
                }
            },
        },
    },
}
INFER_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "model": InferResponse,
        "description": "the outputs; binary outputs: the JSON header, then the raw bytes",
        "content": {
            "application/octet-stream": {"schema": _BINARY},
        },
        "headers": {
            "Inference-Header-Content-Length": {
                "description": "in a binary answer: the length of its JSON header",
                "schema": {"type": "integer"},
            },
            "X-Backend": {"description": "the backend that answered", "schema": {"type": "string"}},
        },
    }
}
