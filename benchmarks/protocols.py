"""JSON against binary tensors through the gateway: ``python -m benchmarks.protocols`` (not a test).

Needs a running stack (``make up``; reads ``$STACK_RUN_DIR/stack.json``). For one model
(default ``resnet``) at each batch size (default 1 and 8), through the gateway to each
backend (default ``torch``, ``tf``), four ways of sending the same instances:

- ``v1 JSON``: ``POST /v1/models/{m}/predict``, TF Serving's row JSON; the gateway checks it
  and forwards the same JSON (TorchServe; the TF server's REST API);
- ``v2 JSON``: ``POST /v2/models/{m}/infer`` with JSON tensors; the gateway parses the JSON
  once, then the tensors travel binary to the backend;
- ``v2 binary``: the same with the binary tensor data extension: binary end to end (TorchServe
  gets the protocol's binary layout, TF its gRPC API with ``tensor_content``);
- ``v2 gRPC``: ``ModelInfer`` with ``raw_input_contents``: binary end to end.

Each cell is measured twice per repeat: latency with one request in flight (p50, p99) and
throughput with ``--concurrency`` in flight (requests/s; images/s = requests/s x batch).
A window counts the requests that finished in it, so it must be several times the slowest
request long (a batch of 8 images as JSON takes seconds here): give ``--duration`` per
batch size by running the command once per batch.
REST goes through ``wrk`` (a native load generator); gRPC through one ``grpc.aio`` channel
from this process, with pre-serialized requests and undecoded answers (each protocol's
answer is checked once before it is measured). Cells are interleaved within each repeat,
so drift on a shared machine spreads over all of them; the table shows min / median / max
over repeats and each protocol's throughput as a multiple of ``v1 JSON``'s (ratio of
medians). The JSON bodies are the load tests' (floats rounded to 3 decimals: shorter JSON
than a client writing full float32 precision, so the ratios are conservative).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from contract import latency
from contract.manifest import ModelEntry
from contract.oip import HEADER_LENGTH, datatype, read_rest_response
from contract.stackinfo import StackInfo
from gateway.protos import oip_v2_pb2 as pb
from loadtests import payload, wrk

PROTOCOLS = ("v1 JSON", "v2 JSON", "v2 binary", "v2 gRPC")
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


@dataclass(frozen=True)
class Cell:
    """One measurement: requests/s, p50 and p99 in ms."""

    rps: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Case:
    """One protocol, batch size and backend: what to send and where."""

    protocol: str
    batch: int
    backend: str
    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.protocol, self.batch, self.backend)


def grpc_request(entry: ModelEntry, arrays: dict[str, np.ndarray]) -> bytes:
    """A serialized ModelInferRequest with every input as raw bytes."""
    request = pb.ModelInferRequest(model_name=entry.name)
    for tensor in entry.inputs:
        array = np.ascontiguousarray(arrays[tensor.name], dtype="<f4" if tensor.dtype == "float32" else None)
        request.inputs.add(name=tensor.name, datatype=datatype(tensor), shape=list(array.shape))
        request.raw_input_contents.append(array.tobytes())
    return bytes(request.SerializeToString())


def cases(info: StackInfo, entry: ModelEntry, batches: list[int], backends: list[str]) -> list[Case]:
    """Every (protocol, batch, backend) with its body; the same instances in every encoding."""
    found: list[Case] = []
    for batch in batches:
        v1 = payload.encoded(entry, batch, seed=0, encoding="v1")
        v2 = payload.encoded(entry, batch, seed=0, encoding="v2")
        v2b = payload.encoded(entry, batch, seed=0, encoding="v2_binary")
        arrays = {t.name: payload.instances(entry, batch, seed=0)[t.name] for t in entry.inputs}
        raw = grpc_request(entry, {n: a.astype(np.float32) for n, a in arrays.items()})
        v2_url = f"{info.gateway}/v2/models/{entry.name}/infer"
        for backend in backends:
            pin = {"X-Backend": backend}
            found += [
                Case(
                    "v1 JSON", batch, backend, f"{info.gateway}/v1/models/{entry.name}/predict", v1[0], {**v1[1], **pin}
                ),
                Case("v2 JSON", batch, backend, v2_url, v2[0], {**v2[1], **pin}),
                Case("v2 binary", batch, backend, v2_url, v2b[0], {**v2b[1], **pin}),
                Case("v2 gRPC", batch, backend, str(info.gateway_grpc), raw, {"x-backend": backend}),
            ]
    return found


def check(case: Case, entry: ModelEntry) -> None:
    """One request of ``case``; raise unless it is answered by its backend with ``batch`` rows of every output."""
    if case.protocol == "v2 gRPC":
        with grpc.insecure_channel(case.url, options=_GRPC_OPTIONS) as channel:
            call = channel.unary_unary(MODEL_INFER, response_deserializer=pb.ModelInferResponse.FromString)
            answer = call(case.body, metadata=tuple(case.headers.items()), timeout=120)
        assert answer.parameters["backend"].string_param == case.backend, answer.parameters
        assert len(answer.raw_output_contents) == len(entry.outputs)
        return
    response = httpx.post(case.url, content=case.body, headers=case.headers, timeout=120)
    if response.status_code != 200:
        raise RuntimeError(f"{case.key}: {response.status_code} {response.text[:300]}")
    if case.protocol == "v1 JSON":
        assert len(response.json()["predictions"]) == case.batch
    else:
        read_rest_response(response.content, response.headers.get(HEADER_LENGTH), entry, case.batch)
    assert response.headers["X-Backend"] == case.backend


_GRPC_OPTIONS = [("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)]


async def _grpc_load(case: Case, concurrency: int, duration_s: float) -> Cell:
    """``concurrency`` calls in flight on one channel for ``duration_s``; pre-serialized in, raw bytes out."""
    hist = latency.new_histogram()
    count = 0
    async with grpc.aio.insecure_channel(case.url, options=_GRPC_OPTIONS) as channel:
        call = channel.unary_unary(MODEL_INFER)  # bytes in, bytes out: no client-side (de)serialization
        metadata = tuple(case.headers.items())
        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                await call(case.body, metadata=metadata, timeout=120)
                latency.record(hist, time.perf_counter() - start)
                count += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Cell(count / elapsed, latency.percentile_ms(hist, 50) or 0.0, latency.percentile_ms(hist, 99) or 0.0)


def measure(case: Case, concurrency: int, duration_s: float) -> Cell:
    if case.protocol == "v2 gRPC":
        return asyncio.run(_grpc_load(case, concurrency, duration_s))
    threads = 2 if concurrency > 1 else 1
    result = wrk.run(
        case.url, case.body, connections=concurrency, duration_s=duration_s, headers=case.headers,
        threads=threads, timeout_s=60,
    )  # fmt: skip
    if result.non_2xx or result.socket_errors:
        raise RuntimeError(f"{case.key}: {result.non_2xx} non-2xx, {result.socket_errors} socket errors")
    return Cell(result.rps, result.p50_ms, result.p99_ms)


def _cell(values: list[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def table(results: dict[tuple[str, int, str, str], list[Cell]], args: argparse.Namespace) -> str:
    """The Markdown table: latency at 1 in flight, throughput at ``--concurrency``, ratio against v1 JSON."""
    lines = [
        "| backend | batch | protocol | p50 ms (1 in flight) | p99 ms (1 in flight) "
        f"| req/s ({args.concurrency} in flight) | images/s (median) | throughput vs v1 JSON |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend in args.backends:
        for batch in args.batches:
            base = statistics.median(c.rps for c in results[("v1 JSON", batch, backend, "load")])
            for protocol in PROTOCOLS:
                seq = results[(protocol, batch, backend, "latency")]
                load = results[(protocol, batch, backend, "load")]
                rps = statistics.median(c.rps for c in load)
                ratio = f"{rps / base:.2f}x" if base > 0 else "v1 JSON finished no request"
                lines.append(
                    f"| {backend} | {batch} | {protocol} | {_cell([c.p50_ms for c in seq])} | "
                    f"{_cell([c.p99_ms for c in seq])} | {_cell([c.rps for c in load], 2)} | "
                    f"{rps * batch:.1f} | {ratio} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Check every case once, then measure them interleaved and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.protocols", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight for throughput")
    parser.add_argument("--stack", type=Path, default=Path(os.environ.get("STACK_RUN_DIR", ".run")) / "stack.json")
    parser.add_argument("--out", type=Path, default=None, help="write the raw figures here as JSON")
    args = parser.parse_args(argv)
    info = StackInfo.read(args.stack)
    if info.gateway_grpc is None:
        print("the gateway's gRPC port is off (GATEWAY_GRPC_PORT=0)", file=sys.stderr)
        return 2
    entry = payload.load_model(args.model, info.artifacts)
    load_start = os.getloadavg()
    todo = cases(info, entry, args.batches, args.backends)
    for case in todo:
        check(case, entry)
        print(f"checked {case.key}: {len(case.body):,} bytes per request", file=sys.stderr, flush=True)
    results: dict[tuple[str, int, str, str], list[Cell]] = {}
    for repeat in range(args.repeats):
        for case in todo:
            for kind, concurrency in (("latency", 1), ("load", args.concurrency)):
                cell = measure(case, concurrency, args.duration)
                results.setdefault((*case.key, kind), []).append(cell)
                print(f"repeat {repeat + 1} {case.protocol:9} batch {case.batch} {case.backend:5} {kind:7} "
                      f"{cell.rps:7.2f} req/s p50 {cell.p50_ms:8.2f} ms p99 {cell.p99_ms:8.2f} ms",
                      file=sys.stderr, flush=True)  # fmt: skip
    load_end = os.getloadavg()
    print(
        f"model {args.model}, {args.duration:g} s per cell x {args.repeats} repeats, cells min / median / max; "
        f"load average at start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, "
        f"at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; TF server {info.tf_server}\n"
    )
    if args.out:
        raw: dict[str, Any] = {" / ".join(map(str, k)): [c.__dict__ for c in v] for k, v in results.items()}
        args.out.write_text(json.dumps({"load_start": load_start, "load_end": load_end, "results": raw}, indent=2))
    print(table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
