"""Benchmark of the compatible TF server (not a test): REST vs gRPC, batching on vs off, same run.

``python -m benchmarks.tf_server [--models mlp digits resnet] [--repeats 3] [--seconds 3]``

For each batching mode a fresh server is started (``python -m services.tf_api serve``,
free loopback ports); for each model, batch 1, each repeat measures:

- ``rest_seq`` / ``grpc_seq``: p50/p99 at 1 connection, sequential (Python http.client;
  tensorflow-serving-api's sync stub);
- ``rest_wrk1``: the same over REST with wrk (a native load generator, cross-check);
- ``rest_wrk16``: saturation throughput and p99 at 16 connections (wrk);
- ``grpc_16``: the same over gRPC, 16 calls in flight on one grpc.aio channel.

Every loop is bounded in count and time, and talks to 127.0.0.1 only. Prints a
Markdown table of min/median/max over repeats and writes the raw figures as JSON
under reports/tf_api_bench/. The load generator shares the machine's cores with the
server: say so next to any figure.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from contract import latency
from loadtests import payload
from loadtests import wrk as common_wrk
from services.process import Process, free_port

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MAX_SEQUENTIAL = 2000
Figures = dict[str, float]


@contextmanager
def server(batching: bool, log: Path) -> Iterator[tuple[int, int]]:
    """A compatible server on free ports; yields (rest, grpc) once every model answers."""
    rest, grpc_port = free_port(HOST), free_port(HOST)
    env = {
        **os.environ,
        "TF_API_SERVER": "compat",
        "TF_API_REST_PORT": str(rest),
        "TF_API_GRPC_PORT": str(grpc_port),
        "TF_API_ENABLE_BATCHING": str(batching).lower(),
        "TF_API_LOG_DIR": str(log.parent),
    }
    with Process.python("tf_api", ["-m", "services.tf_api", "serve"], log, env=env) as proc:
        proc.wait_ready(line="tf_api: started", timeout_s=180)
        yield rest, grpc_port


def _percentiles(latencies: list[float]) -> Figures:
    found = latency.percentiles_ms(latencies, (50, 99))
    return {
        "p50_ms": found["p50_ms"] or float("nan"),
        "p99_ms": found["p99_ms"] or float("nan"),
        "n": float(len(latencies)),
    }


def _sequential(call: Callable[[], None], seconds: float) -> Figures:
    for _ in range(5):  # warm-up, not measured
        call()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and len(latencies) < MAX_SEQUENTIAL:
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return _percentiles(latencies)


def rest_sequential(port: int, model: str, body: bytes, seconds: float) -> Figures:
    """p50/p99 over one keep-alive HTTP connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Content-Type": "application/json"}

    def call() -> None:
        conn.request("POST", f"/v1/models/{model}:predict", body, headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(payload.decode()[:200])

    try:
        return _sequential(call, seconds)
    finally:
        conn.close()


def _request(model: str, x: np.ndarray) -> Any:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    return request


def grpc_sequential(port: int, model: str, x: np.ndarray, seconds: float) -> Figures:
    """p50/p99 over one channel, one call at a time."""
    request = _request(model, x)
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return _sequential(lambda: stub.Predict(request, timeout=60), seconds)


async def _grpc_concurrent(port: int, request: Any, connections: int, seconds: float) -> Figures:
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        await stub.Predict(request, timeout=60)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    await stub.Predict(request, timeout=60)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return {**_percentiles(latencies), "rps": len(latencies) / elapsed, "errors": float(errors)}


def grpc_concurrent(port: int, model: str, x: np.ndarray, connections: int, seconds: float) -> Figures:
    """Throughput and p99 with ``connections`` calls in flight."""
    return asyncio.run(_grpc_concurrent(port, _request(model, x), connections, seconds))


def wrk(port: int, model: str, body_file: Path, connections: int, seconds: float) -> Figures:
    """wrk's throughput and p50/p99 (REST), through :mod:`loadtests.wrk`."""
    try:
        result = common_wrk.run(
            f"http://{HOST}:{port}/v1/models/{model}:predict",
            body_file.read_bytes(),
            connections=connections,
            duration_s=seconds,
            threads=min(2, connections),
            timeout_s=30,
        )
    except ValueError:  # wrk printed no distribution: nothing finished within the run
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "rps": 0.0, "errors": 0.0}
    if result.rps == 0.0:  # nothing finished within the run
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "rps": 0.0, "errors": 0.0}
    return {
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "rps": result.rps,
        "errors": float(result.non_2xx + result.socket_errors),
    }


def measure(model: str, rest: int, grpc_port: int, seconds: float, work: Path) -> dict[str, Figures]:
    """One repeat of every probe for ``model`` at batch 1."""
    entry = payload.load_model(model)
    x = payload.instances(entry, 1, seed=0)[entry.input_names[0]].astype(np.float32)
    body = payload.body(entry, 1, seed=0)
    body_file = work / f"{model}.json"
    body_file.write_bytes(body)
    results = {
        "rest_seq": rest_sequential(rest, model, body, seconds),
        "grpc_seq": grpc_sequential(grpc_port, model, x, seconds),
        "grpc_16": grpc_concurrent(grpc_port, model, x, 16, seconds),
    }
    if shutil.which("wrk"):
        results["rest_wrk1"] = wrk(rest, model, body_file, 1, seconds)
        results["rest_wrk16"] = wrk(rest, model, body_file, 16, seconds)
    return results


def _spread(values: list[float]) -> str:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return "n/a"
    fmt = "{:.0f}" if min(values) >= 100 else "{:.2f}"
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def table(runs: dict[str, dict[str, list[dict[str, Figures]]]]) -> str:
    """Markdown: one row per (batching, model, probe), min/median/max over repeats."""
    lines = [
        "| batching | model | probe | p50 ms | p99 ms | req/s | errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, models in runs.items():
        for model, repeats in models.items():
            for probe in repeats[0]:
                rows = [r[probe] for r in repeats]
                rps = _spread([r["rps"] for r in rows]) if "rps" in rows[0] else "-"
                errors = int(sum(r.get("errors", 0.0) for r in rows))
                p50 = _spread([r["p50_ms"] for r in rows])
                p99 = _spread([r["p99_ms"] for r in rows])
                lines.append(f"| {mode} | {model} | {probe} | {p50} | {p99} | {rps} | {errors} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tf_server", description=__doc__)
    parser.add_argument("--models", nargs="+", default=["mlp", "digits", "resnet"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--resnet-seconds", type=float, default=10.0, help="resnet answers take ~0.1-3 s each")
    args = parser.parse_args(argv)
    out_dir = REPO / "reports" / "tf_api_bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    runs: dict[str, dict[str, list[dict[str, Figures]]]] = {}
    load: dict[str, tuple[float, float, float]] = {"start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("on", "off"):
            with server(mode == "on", out_dir / f"{stamp}-server-batching-{mode}.log") as (rest, grpc_port):
                runs[mode] = {}
                for model in args.models:
                    runs[mode][model] = []
                    for repeat in range(args.repeats):
                        print(f"batching {mode}: {model} repeat {repeat + 1}/{args.repeats}", flush=True)
                        seconds = args.resnet_seconds if model == "resnet" else args.seconds
                        runs[mode][model].append(measure(model, rest, grpc_port, seconds, Path(tmp)))
                load[mode] = os.getloadavg()
    (out_dir / f"{stamp}.json").write_text(json.dumps({"runs": runs, "loadavg": load}, indent=2))
    print(table(runs))
    print("load average (1/5/15 min) at start and after each mode:", json.dumps(load))
    print(f"raw figures: {out_dir / f'{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
