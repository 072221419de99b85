"""NVIDIA Triton's Open Inference Protocol REST API, with binary tensors both ways.

``POST {base}/v2/models/{model}{suffix}/infer`` (``suffix`` ``_ort`` for the ONNX Runtime
model of the generated repository, :mod:`services.triton_api.repository`). Every request
travels in the protocol's binary layout (``Inference-Header-Content-Length``), written by
:func:`contract.oip.rest_request` from the checked arrays, every output asked back as raw
bytes and read by :func:`contract.oip.read_rest_response`: a ``/v1`` JSON request never
reaches Triton as JSON, and its answer is rendered back in the caller's format
(``predictions`` or ``outputs``). Readiness is the model's own ``/ready``.
"""

from __future__ import annotations

import time
from typing import Any

from contract.manifest import ModelEntry
from contract.oip import HEADER_LENGTH, read_rest_response, rest_request
from contract.tensors import OutputError, render_outputs

from ..errors import BadBackendResponseError
from ..payload import Payload
from .base import BackendClient, BackendResult, Readiness, raise_for_status
from .transport import Transport

SERVER = "triton"


class TritonClient(BackendClient):
    """One pooled transport to Triton's HTTP port; ``suffix`` picks the model's ``_ort`` twin."""

    def __init__(self, name: str, base_url: str, transport: Transport, suffix: str = "") -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.suffix = suffix

    def _url(self, model: str, what: str) -> str:
        return f"{self.base_url}/v2/models/{model}{self.suffix}/{what}"

    async def predict(self, model: ModelEntry, payload: Payload) -> BackendResult:
        """Binary requests get the output arrays back; ``/v1`` JSON ones the answer in their own format."""
        if payload.binary:
            body, length = payload.body, payload.header_length
        else:
            body, length = rest_request(payload.arrays, model)
        headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(length)}
        start = time.perf_counter()
        answer = await self.transport.request("POST", self._url(model.name, "infer"), body, headers)
        latency = time.perf_counter() - start
        raise_for_status(answer.status, answer.body, self.name, self.transport.limits.retry_after_s)
        header = next((v for k, v in answer.headers.items() if k.lower() == HEADER_LENGTH.lower()), None)
        try:
            outputs = read_rest_response(answer.body, header, model, payload.rows)
        except OutputError as exc:
            raise BadBackendResponseError(f"backend {self.name} answered badly: {exc}", self.name) from None
        if payload.binary:
            return BackendResult({}, latency, SERVER, outputs)
        return BackendResult(render_outputs(outputs, payload.format), latency, SERVER)

    async def ready(self, model: str) -> Readiness:
        try:
            answer = await self.transport.request("GET", self._url(model, "ready"))
        except Exception as exc:  # noqa: BLE001 -- readiness never raises; any failure means not ready
            return Readiness(False, SERVER, f"{type(exc).__name__}: {exc}")
        return Readiness(
            answer.status == 200, SERVER, f"/v2/models/{model}{self.suffix}/ready answered {answer.status}"
        )

    async def close(self) -> None:
        await self.transport.close()

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": "oip-v2-rest-binary",
            "url": self.base_url,
            "path": f"/v2/models/{{model}}{self.suffix}/infer",
        }
