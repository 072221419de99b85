"""TorchServe's inference API, with its token: read from ``key_file.json``, re-read on refusal.

TorchServe (token authorization on) writes ``{"inference": {"key": ...}, ...}`` to
``key_file.json`` in its working directory; keys expire and change on every restart.
The client caches the key, and when TorchServe answers 400/401/403 with a token
complaint it re-reads the file and retries once. A refusal with a fresh key is the
gateway's misconfiguration, not the caller's: 502.

A binary request (:attr:`Payload.binary`) goes as ``application/octet-stream`` in the Open
Inference Protocol's binary layout (``Inference-Header-Content-Length``); duoserve's
handler answers in the same layout, and the outputs come back as arrays: no JSON on the way.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from contract.keys import KeyFileError, read_key
from contract.manifest import ModelEntry
from contract.oip import HEADER_LENGTH, read_rest_response
from contract.tensors import OutputError

from ..errors import BadBackendResponseError
from ..payload import Payload
from .base import BackendClient, BackendResult, Readiness, answer_of, decode_json, raise_for_status
from .transport import HttpAnswer, Transport

log = logging.getLogger("gateway.torchserve")


def _is_token_refusal(answer: HttpAnswer) -> bool:
    if answer.status in (401, 403):
        return True
    return answer.status == 400 and b"token authorization" in answer.body.lower()


class TorchServeClient(BackendClient):
    """``POST {base}/predictions/{model}{suffix}``; ``suffix`` is ``_ort`` for the ONNX Runtime variant."""

    def __init__(self, name: str, base_url: str, transport: Transport, key_file: Path | None, suffix: str = "") -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.key_file = key_file
        self.suffix = suffix
        self._key: str | None = None
        self._key_loaded = False

    def _read_key(self) -> str | None:
        if self.key_file is None:
            return None
        try:
            return read_key(self.key_file, "inference")
        except KeyFileError as exc:
            log.warning("cannot read TorchServe's inference key: %s", exc)
            return None

    def _headers(self, refresh: bool = False, header_length: int | None = None) -> dict[str, str]:
        if refresh or not self._key_loaded:
            self._key = self._read_key()
            self._key_loaded = True
        if header_length is None:
            headers = {"Content-Type": "application/json"}
        else:
            headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(header_length)}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    async def _send(self, method: str, url: str, body: bytes | None, header_length: int | None = None) -> HttpAnswer:
        answer = await self.transport.request(method, url, body, self._headers(header_length=header_length))
        if _is_token_refusal(answer) and self.key_file is not None:
            log.info("TorchServe refused the inference key; re-reading %s", self.key_file)
            answer = await self.transport.request(
                method, url, body, self._headers(refresh=True, header_length=header_length)
            )
            if _is_token_refusal(answer):
                raise BadBackendResponseError(
                    f"backend {self.name} refused the gateway's inference key from {self.key_file} "
                    f"({answer.status}); is GATEWAY_TORCH_KEY_FILE TorchServe's current key_file.json?",
                    self.name,
                )
        return answer

    async def predict(self, model: ModelEntry, payload: Payload) -> BackendResult:
        url = f"{self.base_url}/predictions/{model.name}{self.suffix}"
        start = time.perf_counter()
        answer = await self._send("POST", url, payload.body, payload.header_length)
        latency = time.perf_counter() - start
        raise_for_status(answer.status, answer.body, self.name, self.transport.limits.retry_after_s)
        if payload.binary:
            return BackendResult({}, latency, "torchserve", self._binary_outputs(answer, model, payload.rows))
        return BackendResult(answer_of(answer.body, self.name), latency, "torchserve")

    def _binary_outputs(self, answer: HttpAnswer, model: ModelEntry, rows: int) -> dict[str, np.ndarray]:
        length = next((v for k, v in answer.headers.items() if k.lower() == HEADER_LENGTH.lower()), None)
        try:
            return read_rest_response(answer.body, length, model, rows)
        except OutputError as exc:
            raise BadBackendResponseError(f"backend {self.name} answered badly: {exc}", self.name) from None

    async def ready(self, model: str) -> Readiness:
        try:
            answer = await self._send("GET", f"{self.base_url}/ping", None)
        except Exception as exc:  # noqa: BLE001 -- readiness never raises; any failure means not ready
            return Readiness(False, "torchserve", f"{type(exc).__name__}: {exc}")
        if answer.status != 200:
            return Readiness(False, "torchserve", f"/ping answered {answer.status}")
        try:
            status = decode_json(answer.body, self.name).get("status")
        except (BadBackendResponseError, AttributeError):
            status = None
        return Readiness(status == "Healthy", "torchserve", f"/ping status {status!r}")

    async def close(self) -> None:
        await self.transport.close()

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": "torchserve-rest",
            "url": self.base_url,
            "path": f"/predictions/{{model}}{self.suffix}",
            "token": self.key_file is not None,
        }
