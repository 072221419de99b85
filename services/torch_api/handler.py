"""TorchServe handler for every duoserve model: row-format JSON in, ``{"predictions": ...}`` out.

Packed into each ``.mar`` together with ``spec.json`` (the model's input/output spec from
the manifest) and ``duoserve_validation.py`` (a copy of ``services.common.validation``).
The serialized file decides the runtime: ``*.pt`` runs as TorchScript, ``*.onnx`` in
ONNX Runtime (the ``<model>_ort`` archives).

With server-side batching TorchServe hands ``handle`` several requests at once: the
valid ones are stacked into one tensor, run once, and split back so each caller gets
exactly its own rows, in order. A bad request gets its own 4xx with a JSON body in
TorchServe's error shape (``{"code", "type", "message"}``) and does not disturb the
others in its batch or the worker.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

try:  # inside a .mar the validation module sits beside this file
    import duoserve_validation as validation  # type: ignore[import-not-found]
except ImportError:  # in the repository (tests, linters)
    from services.common import validation

logger = logging.getLogger(__name__)

#: Environment variable that overrides the intra-op thread count of each worker.
THREADS_ENV = "DUOSERVE_TORCH_THREADS"


def _threads_per_worker(workers: int) -> int:
    env = os.environ.get(THREADS_ENV)
    if env:
        return max(1, int(env))
    # Workers are processes: giving each all cores oversubscribes the host.
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class DuoserveHandler:
    """Validates, batches and runs one model in TorchScript or ONNX Runtime."""

    def __init__(self) -> None:
        self.initialized = False
        self.spec: dict[str, Any] = {}
        self.runtime = ""
        self.device = "cpu"
        self._run: Any = None

    def initialize(self, context: Any) -> None:
        """Load the model named by the archive, pick the device and threads, and warm up."""
        properties = context.system_properties
        model_dir = Path(properties["model_dir"])
        self.spec = json.loads((model_dir / "spec.json").read_text())
        serialized = model_dir / context.manifest["model"]["serializedFile"]
        config = getattr(context, "model_yaml_config", None) or {}
        workers = int(config.get("minWorkers", 1))
        threads = _threads_per_worker(workers)
        gpu_id = properties.get("gpu_id")
        if serialized.suffix == ".onnx":
            self._load_onnx(serialized, gpu_id, threads)
        else:
            self._load_torchscript(serialized, gpu_id, threads)
        self._warm_up(int(config.get("batchSize", 1)))
        self.initialized = True
        logger.info(
            "duoserve: %s loaded with %s on %s, %d intra-op threads",
            self.spec["name"],
            self.runtime,
            self.device,
            threads,
        )

    def _load_torchscript(self, path: Path, gpu_id: Any, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        if gpu_id is not None and torch.cuda.is_available():
            self.device = f"cuda:{gpu_id}"
        module = torch.jit.load(str(path), map_location=self.device).eval()
        self.runtime = "torchscript"

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = module(torch.from_numpy(batch).to(self.device))
            return out.float().cpu().numpy()

        self._run = run

    def _load_onnx(self, path: Path, gpu_id: Any, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers: list[Any] = ["CPUExecutionProvider"]
        if gpu_id is not None and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(gpu_id)}))
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.device = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.runtime = "onnxruntime"
        input_name = self.spec["input_name"]

        def run(batch: np.ndarray) -> np.ndarray:
            return np.asarray(session.run(None, {input_name: batch})[0], dtype=np.float32)

        self._run = run

    def _warm_up(self, batch_size: int) -> None:
        shape = self.spec["input_shape"]
        for n in sorted({1, max(1, min(batch_size, int(self.spec["max_batch"])))}):
            self._run(np.zeros([n, *shape], dtype=np.float32))

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[str]:
        """One answer per request in the batch: predictions, or that request's own error."""
        start = time.perf_counter()
        answers: list[str | None] = [None] * len(data)
        arrays: list[tuple[int, np.ndarray]] = []
        for idx, request in enumerate(data):
            try:
                arrays.append((idx, self._parse(request)))
            except validation.InputError as exc:
                answers[idx] = self._error(context, idx, exc.status, "InputError", exc.message)
        if arrays:
            try:
                outputs = self._run(np.concatenate([a for _, a in arrays]))
            except Exception:
                logger.exception("duoserve: inference failed for %s", self.spec.get("name"))
                for idx, _ in arrays:
                    answers[idx] = self._error(context, idx, 500, "InternalServerException", "inference failed")
            else:
                offset = 0
                for idx, array in arrays:
                    rows = outputs[offset : offset + len(array)]
                    offset += len(array)
                    context.set_response_content_type(idx, "application/json")
                    # how many requests shared this forward pass: batching made visible
                    context.set_response_header(idx, "X-Batch-Requests", str(len(arrays)))
                    answers[idx] = json.dumps({"predictions": rows.tolist()})
        logger.debug("duoserve: batch of %d requests in %.3f ms", len(data), 1e3 * (time.perf_counter() - start))
        return [a if a is not None else "" for a in answers]

    def _parse(self, request: dict[str, Any]) -> np.ndarray:
        body = request.get("body")
        if body is None:
            body = request.get("data")
        if body is None:
            # TorchServe turns form-encoded bodies into parameters: there is no body left
            raise validation.InputError(
                "request has no JSON body (send Content-Type: application/json); " + self._expected()
            )
        return validation.parse_request(body, self.spec["name"], self.spec["input_shape"], int(self.spec["max_batch"]))

    def _expected(self) -> str:
        return validation.expected_text(self.spec["name"], self.spec["input_shape"], int(self.spec["max_batch"]))

    @staticmethod
    def _error(context: Any, idx: int, status: int, kind: str, message: str) -> str:
        context.set_response_status(status, kind, idx)
        context.set_response_content_type(idx, "application/json")
        return json.dumps({"code": status, "type": kind, "message": message})
