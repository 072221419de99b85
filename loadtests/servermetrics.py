"""The servers' own accounts of where a request's time went, read from their Prometheus metrics.

Each server keeps running sums; the change in a sum over a window divided by the change in
its count is the mean per request in that window (perf_analyzer reads Triton's statistics
the same way). Read with prometheus_client's text parser.

- **TorchServe** (metrics API, ``metrics_mode=prometheus``): ``ts_inference_requests_total``,
  ``ts_inference_latency_microseconds`` (request received to answer written) and
  ``ts_queue_latency_microseconds`` (received to handed to a worker: the queue and the
  batching wait), per model; the duoserve handler's own counters ``DuoserveHandlerRequests``
  and ``Duoserve{Preprocess,Inference,Compute,Postprocess}Micros``
  (:mod:`services.torch_api.handler`).
- **TF server** (``monitoring.config``'s path on the REST port):
  ``:tensorflow:serving:batching_session:queuing_latency`` and
  ``:tensorflow:serving:runtime_latency`` (TF Serving's names; the binary exports them too),
  and the compatible server's ``:duoserve:compat:rest_phase_latency`` (total, pre, inference,
  post).
- **Triton** (its metrics port, ``/metrics``): counters in microseconds per model (label
  ``model``): ``nv_inference_request_duration_us`` (total), ``nv_inference_queue_duration_us``
  (the dynamic batcher's queue), ``nv_inference_compute_input_duration_us`` (pre),
  ``nv_inference_compute_infer_duration_us`` (the model's ``execute``: duoserve's checks and the
  framework, counted as compute) and ``nv_inference_compute_output_duration_us`` (post), each over
  ``nv_inference_request_success``.

What a server does not export stays None and the breakdown says it is unaccounted.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

TF_METRICS_PATH = "/monitoring/prometheus/metrics"
#: part -> (TorchServe counter in microseconds, its model label, the counter of requests it covers)
TORCH_PARTS: dict[str, tuple[str, str, str]] = {
    "total": ("ts_inference_latency_microseconds", "model_name", "ts_inference_requests"),
    "queue": ("ts_queue_latency_microseconds", "model_name", "ts_inference_requests"),
    "pre": ("DuoservePreprocessMicros", "ModelName", "DuoserveHandlerRequests"),
    "inference": ("DuoserveInferenceMicros", "ModelName", "DuoserveHandlerRequests"),
    "compute": ("DuoserveComputeMicros", "ModelName", "DuoserveHandlerRequests"),
    "post": ("DuoservePostprocessMicros", "ModelName", "DuoserveHandlerRequests"),
}
#: part -> (TF histogram, extra label filter)
TF_PARTS: dict[str, tuple[str, dict[str, str]]] = {
    "total": (":duoserve:compat:rest_phase_latency", {"phase": "total"}),
    "queue": (":tensorflow:serving:batching_session:queuing_latency", {}),
    "pre": (":duoserve:compat:rest_phase_latency", {"phase": "pre"}),
    "inference": (":duoserve:compat:rest_phase_latency", {"phase": "inference"}),
    "compute": (":tensorflow:serving:runtime_latency", {}),
    "post": (":duoserve:compat:rest_phase_latency", {"phase": "post"}),
}
#: part -> Triton counter (microseconds, label ``model``), each over :data:`TRITON_COUNT`
TRITON_PARTS: dict[str, str] = {
    "total": "nv_inference_request_duration_us",
    "queue": "nv_inference_queue_duration_us",
    "pre": "nv_inference_compute_input_duration_us",
    "compute": "nv_inference_compute_infer_duration_us",
    "post": "nv_inference_compute_output_duration_us",
}
TRITON_COUNT = "nv_inference_request_success"
PARTS = ("total", "queue", "pre", "inference", "compute", "post")

Snapshot = dict[str, tuple[float, float] | None]


def _get(url: str, timeout: float = 5.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removesuffix("_total") if family.type == "counter" else sample.name
            found.append((name, dict(sample.labels), float(sample.value)))
    return found


def _pick(samples: list[tuple[str, dict[str, str], float]], name: str, labels: dict[str, str]) -> float | None:
    values = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())]
    return sum(values) if values else None


def torchserve(metrics_url: str, archive: str) -> Snapshot:
    """(microseconds, count) per part of one TorchServe archive (``digits``, ``digits_ort``); None if absent."""
    text = _get(metrics_url.rstrip("/") + "/metrics")
    if text is None:
        return dict.fromkeys(PARTS)
    samples = _samples(text)
    found: Snapshot = {}
    for part, (name, label, count_name) in TORCH_PARTS.items():
        total = _pick(samples, name, {label: archive})
        count = _pick(samples, count_name, {label: archive})
        found[part] = (total, count) if total is not None and count is not None else None
    return found


def tf_server(rest_url: str, model: str, path: str = TF_METRICS_PATH) -> Snapshot:
    """(microseconds, count) per part of one TF model; None where the server does not export it."""
    text = _get(rest_url.rstrip("/") + path)
    if text is None:
        return dict.fromkeys(PARTS)
    samples = _samples(text)
    found: Snapshot = {}
    for part, (name, extra) in TF_PARTS.items():
        labels = {"model_name": model, **extra}
        total = _pick(samples, name + "_sum", labels)
        count = _pick(samples, name + "_count", labels)
        found[part] = (total, count) if total is not None and count is not None else None
    return found


def triton(metrics_url: str, model: str) -> Snapshot:
    """(microseconds, count) per part of one Triton model (``digits``, ``digits_ort``); ``inference`` is None."""
    text = _get(metrics_url.rstrip("/") + "/metrics")
    if text is None:
        return dict.fromkeys(PARTS)
    samples = _samples(text)
    count = _pick(samples, TRITON_COUNT, {"model": model})
    found: Snapshot = dict.fromkeys(PARTS)
    for part, name in TRITON_PARTS.items():
        total = _pick(samples, name, {"model": model})
        found[part] = (total, count) if total is not None and count is not None else None
    return found


def mean_ms(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """Mean milliseconds per request of each part between two snapshots, and the requests counted."""
    means: dict[str, Any] = {}
    counted = None
    for part in PARTS:
        a, b = before.get(part), after.get(part)
        if a is None or b is None or b[1] - a[1] <= 0:
            means[part] = None
            continue
        means[part] = (b[0] - a[0]) / (b[1] - a[1]) / 1000.0
        if part == "total":
            counted = int(b[1] - a[1])
    means["requests"] = counted
    return means
