"""TF Serving's REST predict API (the real binary or duoserve's compatible server).

The compatible server marks its answers with ``X-TF-Server: duoserve-compat``; the real
TF Serving sends no such header. The client remembers which one answered last so that
``/v1/models`` and ``/v1/stats`` say which TF server produced a figure.

TF Serving's REST API takes JSON only, so binary requests (:attr:`Payload.binary`, the
Open Inference Protocol's) go to its gRPC API instead (``binary``, a :class:`TFGrpcClient`).
"""

from __future__ import annotations

import time
from typing import Any

from contract.manifest import ModelEntry
from contract.stackinfo import TF_BINARY, TF_SERVER_HEADER

from ..errors import BadBackendResponseError
from ..payload import Payload
from .base import BackendClient, BackendResult, Readiness, answer_of, decode_json, error_message, raise_for_status
from .transport import HttpAnswer, Transport

_COMPAT_HEADER = TF_SERVER_HEADER.lower()
_HEADERS = {"Content-Type": "application/json"}


def server_identity(answer: HttpAnswer) -> str:
    """``duoserve-compat`` (or whatever the header says) when marked, else TF Serving's binary."""
    for key, value in answer.headers.items():
        if key.lower() == _COMPAT_HEADER:
            return value
    return TF_BINARY


class TFRestClient(BackendClient):
    """``POST {base}/v1/models/{model}:predict``."""

    def __init__(self, name: str, base_url: str, transport: Transport, binary: BackendClient | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.binary = binary
        self.server: str | None = None

    async def predict(self, model: ModelEntry, payload: Payload) -> BackendResult:
        if payload.binary:
            if self.binary is None:
                raise BadBackendResponseError(f"backend {self.name}: no gRPC client for binary tensors", self.name)
            return await self.binary.predict(model, payload)
        start = time.perf_counter()
        answer = await self.transport.request(
            "POST", f"{self.base_url}/v1/models/{model.name}:predict", payload.body, _HEADERS
        )
        latency = time.perf_counter() - start
        self.server = server_identity(answer)
        raise_for_status(answer.status, answer.body, self.name, self.transport.limits.retry_after_s)
        return BackendResult(answer_of(answer.body, self.name), latency, self.server)

    async def ready(self, model: str) -> Readiness:
        try:
            answer = await self.transport.request("GET", f"{self.base_url}/v1/models/{model}")
        except Exception as exc:  # noqa: BLE001 -- readiness never raises; any failure means not ready
            return Readiness(False, self.server or "unknown", f"{type(exc).__name__}: {exc}")
        self.server = server_identity(answer)
        if answer.status != 200:
            return Readiness(False, self.server, f"answered {answer.status}: {error_message(answer.body)}")
        try:
            versions = decode_json(answer.body, self.name).get("model_version_status", [])
            states = {str(v.get("version")): v.get("state") for v in versions}
        except Exception:  # noqa: BLE001 -- a malformed status body means not ready, whatever its shape
            return Readiness(False, self.server, "malformed model status")
        ready = "AVAILABLE" in states.values()
        return Readiness(ready, self.server, f"versions {states}")

    async def close(self) -> None:
        await self.transport.close()
        if self.binary is not None:
            await self.binary.close()

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"protocol": "rest", "url": self.base_url, "server": self.server}
        if self.binary is not None:
            described["binary"] = self.binary.describe()
        return described
