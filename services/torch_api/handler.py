"""TorchServe handler for every duoserve model: the contract's JSON in, TF Serving's answer shape out.

Generic: nothing here knows a model. Each ``.mar`` carries ``model.json`` (the model's
entry from the manifest: named inputs and outputs, dtypes, dynamic axes, max batch) and a
copy of the ``contract`` package, whose :mod:`contract.tensors` checks every request the
same way the gateway does. The serialized file decides the runtime: ``*.pt`` runs as
TorchScript, ``*.pt2`` as a torch.export program, ``*.onnx`` in ONNX Runtime (the
``<model>_ort`` archives).

Requests come as TF Serving's row format (``{"instances": [...]}``) or columnar format
(``{"inputs": {...}}``); each answer mirrors its request's format (``predictions`` or
``outputs``). A request with an ``Inference-Header-Content-Length`` header is the Open
Inference Protocol's binary layout (a JSON header, then raw tensors; the gateway sends
every v2 request so, an image never becoming JSON) and is answered in the same layout,
every output as raw bytes, with the same header; :mod:`contract.oip` checks it against the
contract exactly as the gateway does. With server-side batching TorchServe hands ``handle`` several requests at
once: the valid ones whose tensors have the same shapes (a dynamic axis may differ from
request to request) are stacked and run once, then split back so each caller gets exactly
its own rows, in order. A bad request gets its own 4xx in TorchServe's error shape
(``{"code", "type", "message"}``) without disturbing the others or the worker.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from contract.manifest import ModelEntry
from contract.oip import HEADER_LENGTH, RequestedOutput, read_rest_request, rest_response
from contract.tensors import InputError, Request, expected_text, parse_request, render_outputs, sample_inputs

logger = logging.getLogger(__name__)

#: Environment variable that overrides the intra-op thread count of each worker.
THREADS_ENV = "DUOSERVE_TORCH_THREADS"
#: model-config.yaml key that sets the intra-op threads of each worker (``loadtests tune`` writes it).
THREADS_KEY = "intraOpThreads"
#: TorchServe counters the handler adds per batch (microseconds, each request of a batch counted with
#: the whole batch's time, since every request waited for all of it): TorchServe's metrics API then
#: gives the mean per request over any window as the change in a sum over the change in ``REQUESTS``.
REQUESTS_METRIC = "DuoserveHandlerRequests"
TIME_METRICS = {
    "pre": "DuoservePreprocessMicros",
    "inference": "DuoserveInferenceMicros",
    "compute": "DuoserveComputeMicros",
    "post": "DuoservePostprocessMicros",
}
MODEL_JSON = "model.json"
Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _threads_per_worker(workers: int, configured: int | None = None) -> int:
    env = os.environ.get(THREADS_ENV)
    if env:
        return max(1, int(env))
    if configured:
        return max(1, configured)
    # Workers are processes: giving each all cores oversubscribes the host.
    return max(1, (os.cpu_count() or 1) // max(1, workers))


#: A parsed request, and whether it came (and is answered) in the binary layout.
Parsed = tuple[Request, bool]


def _header_length(context: Any, idx: int) -> str | None:
    """The request's ``Inference-Header-Content-Length``, whatever case the frontend gave the name."""
    headers = context.get_all_request_header(idx) or {}
    wanted = HEADER_LENGTH.lower()
    for name, value in headers.items():
        if str(name).lower() == wanted and isinstance(value, str):
            return value
    return None


def _shape_key(request: Request) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(a.shape[1:]) for a in request.arrays.values())


class DuoserveHandler:
    """Validates, batches and runs one model in TorchScript or ONNX Runtime."""

    def __init__(self) -> None:
        self.initialized = False
        self.entry: ModelEntry | None = None
        self.runtime = ""
        self.device = "cpu"
        self._run: Runner | None = None
        #: seconds inside the framework call of the last batch (set by the runner)
        self._compute_s = 0.0

    def initialize(self, context: Any) -> None:
        """Load the model named by the archive, pick the device and threads, and warm up."""
        properties = context.system_properties
        model_dir = Path(properties["model_dir"])
        self.entry = ModelEntry.model_validate_json((model_dir / MODEL_JSON).read_text())
        serialized = model_dir / context.manifest["model"]["serializedFile"]
        config = getattr(context, "model_yaml_config", None) or {}
        threads = _threads_per_worker(int(config.get("minWorkers", 1)), config.get(THREADS_KEY))
        gpu_id = properties.get("gpu_id")
        if serialized.suffix == ".onnx":
            self._run = self._load_onnx(serialized, gpu_id, threads)
        else:
            self._run = self._load_torch(serialized, gpu_id, threads)
        for rows in sorted({1, max(1, min(int(config.get("batchSize", 1)), self.entry.max_batch))}):
            try:
                self._run(sample_inputs(self.entry, rows, seed=0))
            except Exception as exc:
                if not self.device.startswith("cuda"):
                    raise
                last = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
                # measured on an H200 (docs/models.md): a GRU traced on a CPU host keeps its zero
                # state on the CPU; TorchScript has no pass that moves such constants
                advice = (
                    ". A TorchScript traced on a CPU host can record the CPU as the device of the tensors its "
                    "graph creates: trace it on a GPU host, or bring a torch.export program (.pt2), which "
                    "duoserve moves to the GPU"
                    if self.runtime == "torchscript"
                    else ""
                )
                raise RuntimeError(
                    f"{self.entry.name}: the {self.runtime} file does not run on {self.device}: {last}{advice}"
                ) from exc
        self.initialized = True
        logger.info(
            "duoserve: %s loaded with %s on %s, %d intra-op threads",
            self.entry.name,
            self.runtime,
            self.device,
            threads,
        )

    def _load_torch(self, path: Path, gpu_id: Any, threads: int) -> Runner:
        import torch

        assert self.entry is not None
        entry = self.entry
        torch.set_num_threads(threads)
        if gpu_id is not None and torch.cuda.is_available():
            self.device = f"cuda:{gpu_id}"
            # cuDNN convolutions default to TF32 on Ampere and later (10-bit mantissa): the
            # answers would leave the 1e-4 parity the manifest records against the CPU SavedModel.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        if path.suffix == ".pt2":
            program = torch.export.load(str(path))
            if self.device != "cpu":
                from torch.export.passes import move_to_device_pass

                # an exported program asserts its inputs' device and keeps the tensors its graph
                # creates on the device it was exported on; this pass rewrites both
                program = move_to_device_pass(program, self.device)
            module = program.module()
            self.runtime = "torch.export"
        else:
            module = torch.jit.load(str(path), map_location=self.device).eval()
            self.runtime = "torchscript"

        def run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            inputs = [torch.from_numpy(arrays[name]).to(self.device) for name in entry.input_names]
            started = time.perf_counter()
            with torch.inference_mode():
                out = module(*inputs)
            self._compute_s = time.perf_counter() - started
            if isinstance(out, dict):
                values = [out[name] for name in entry.output_names]
            elif isinstance(out, (tuple, list)):
                values = list(out)
            else:
                values = [out]
            return {t.name: v.cpu().numpy() for t, v in zip(entry.outputs, values, strict=True)}

        return run

    def _load_onnx(self, path: Path, gpu_id: Any, threads: int) -> Runner:
        import onnxruntime as ort

        assert self.entry is not None
        names = self.entry.output_names
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers: list[Any] = ["CPUExecutionProvider"]
        if gpu_id is not None and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(gpu_id)}))
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.device = "cuda" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.runtime = "onnxruntime"

        def run(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            started = time.perf_counter()
            values = session.run(names, arrays)
            self._compute_s = time.perf_counter() - started
            return dict(zip(names, (np.asarray(v) for v in values), strict=True))

        return run

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[str | bytes]:
        """One answer per request in the batch: its outputs, or that request's own error."""
        start = time.perf_counter()
        timing = dict.fromkeys(TIME_METRICS, 0.0)
        answers: list[str | bytes | None] = [None] * len(data)
        groups: dict[tuple[tuple[int, ...], ...], list[tuple[int, Parsed]]] = {}
        for idx, item in enumerate(data):
            try:
                parsed = self._parse(item, _header_length(context, idx))
            except InputError as exc:
                answers[idx] = self._error(context, idx, exc.status, "InputError", exc.message)
                continue
            groups.setdefault(_shape_key(parsed[0]), []).append((idx, parsed))
        timing["pre"] = time.perf_counter() - start
        for group in groups.values():
            self._run_group(group, answers, context, timing)
        self._count(context, len(data), timing)
        logger.debug("duoserve: batch of %d requests in %.3f ms", len(data), 1e3 * (time.perf_counter() - start))
        return [a if a is not None else "" for a in answers]

    @staticmethod
    def _count(context: Any, requests: int, timing: dict[str, float]) -> None:
        """Add this batch to TorchServe's counters (metrics API: ``DuoserveHandlerRequests`` ...)."""
        metrics = getattr(context, "metrics", None)
        if metrics is None:
            return
        metrics.add_counter(REQUESTS_METRIC, requests)
        for key, name in TIME_METRICS.items():
            metrics.add_counter(name, round(timing[key] * 1e6 * requests))

    def _run_group(
        self,
        group: list[tuple[int, Parsed]],
        answers: list[str | bytes | None],
        context: Any,
        timing: dict[str, float],
    ) -> None:
        """Run requests whose tensors share their shapes as one batch; split the outputs back."""
        assert self._run is not None
        assert self.entry is not None
        names = list(group[0][1][0].arrays)
        started = time.perf_counter()
        self._compute_s = 0.0
        try:
            merged = {n: np.concatenate([r.arrays[n] for _, (r, _) in group]) for n in names}
            outputs = self._run(merged)
        except Exception:
            logger.exception("duoserve: inference failed for %s", self.entry.name if self.entry else "?")
            for idx, _ in group:
                answers[idx] = self._error(context, idx, 500, "InternalServerException", "inference failed")
            return
        rendered = time.perf_counter()
        timing["inference"] += rendered - started
        timing["compute"] += self._compute_s
        offset = 0
        for idx, (request, binary) in group:
            mine = {k: v[offset : offset + request.rows] for k, v in outputs.items()}
            offset += request.rows
            # how many requests shared this forward pass: batching made visible
            context.set_response_header(idx, "X-Batch-Requests", str(len(group)))
            if binary:
                every = [RequestedOutput(name, True) for name in self.entry.output_names]
                answer, length = rest_response(self.entry, mine, every)
                context.set_response_content_type(idx, "application/octet-stream")
                context.set_response_header(idx, HEADER_LENGTH, str(length))
                answers[idx] = answer
            else:
                context.set_response_content_type(idx, "application/json")
                answers[idx] = json.dumps(render_outputs(mine, request.format))
        timing["post"] += time.perf_counter() - rendered

    def _parse(self, item: dict[str, Any], header_length: str | None = None) -> Parsed:
        assert self.entry is not None
        body = item.get("body")
        if body is None:
            body = item.get("data")
        if header_length is not None:
            if not isinstance(body, (bytes, bytearray)):
                raise InputError(f"a request with {HEADER_LENGTH} needs a binary body (application/octet-stream)")
            binary = read_rest_request(body, header_length, self.entry)
            return Request(binary.arrays, binary.rows, "row", {}), True
        if body is None:
            # TorchServe turns form-encoded bodies into parameters: there is no body left
            raise InputError(
                "request has no JSON body (send Content-Type: application/json); " + expected_text(self.entry)
            )
        return parse_request(body, self.entry), False

    @staticmethod
    def _error(context: Any, idx: int, status: int, kind: str, message: str) -> str:
        context.set_response_status(status, kind, idx)
        context.set_response_content_type(idx, "application/json")
        return json.dumps({"code": status, "type": kind, "message": message})
