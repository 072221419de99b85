"""Benchmark the proxy alone: a trivial local backend, direct and through the gateway per HTTP client.

``python -m benchmarks.gateway_proxy [--duration 5] [--repeats 3] [--clients h1 aiohttp httpx]``

Starts an echo backend (aiohttp on uvloop, a fixed TorchServe-shaped answer) and, per
HTTP client, the real gateway (``python -m gateway``) in front of it, all on 127.0.0.1;
drives each with ``wrk`` (or, with ``--loadgen python`` or without wrk, a bounded aiohttp
loop): p50/p99 at 1 connection and throughput at 16 connections, ``--repeats`` times,
and prints min/median/max as a Markdown table. Not a test: it takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from contract import latency
from contract.manifest import Manifest
from loadtests import wrk as common_wrk
from services.process import Process, free_port, http_probe
from stack.builtins import BUILTINS

BODY = json.dumps({"instances": [[0.1] * 10]})
ANSWER = json.dumps({"predictions": [[0.5]]}).encode()


def echo_main(port: int) -> None:
    """The trivial backend: every POST answers ``{"predictions": [[0.5]]}``; GET /ping is healthy."""
    import uvloop
    from aiohttp import web

    async def predict(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"status": "Healthy"})

    app = web.Application()
    app.router.add_post("/predictions/{name}", predict)
    app.router.add_get("/ping", ping)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


@dataclass
class Run:
    p50_ms: float
    p99_ms: float
    rps: float


def wrk(url: str, connections: int, duration: float) -> Run:
    """One wrk run through :mod:`loadtests.wrk`; any error fails the benchmark."""
    result = common_wrk.run(url, BODY.encode(), connections=connections, duration_s=duration)
    if result.non_2xx or result.socket_errors:
        raise RuntimeError(
            f"wrk saw {result.non_2xx} non-2xx answers and {result.socket_errors} socket errors at {url}"
        )
    return Run(result.p50_ms, result.p99_ms, result.rps)


def python_load(url: str, connections: int, duration: float) -> Run:
    """A bounded closed-loop load: ``connections`` workers for ``duration`` seconds."""
    import aiohttp

    hist = latency.new_histogram()

    async def main() -> float:
        deadline = time.perf_counter() + duration
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    async with session.post(url, data=BODY, headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"{url} answered {r.status}")
                    latency.record(hist, time.perf_counter() - start)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return time.perf_counter() - began

    elapsed = asyncio.run(main())
    return Run(
        latency.percentile_ms(hist, 50) or 0.0,
        latency.percentile_ms(hist, 99) or 0.0,
        hist.get_total_count() / elapsed,
    )


@contextlib.contextmanager
def _process(name: str, args: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    with Process.python(name, args, log, env=env) as proc:
        proc.wait_ready(http_probe(ready_url), timeout_s=30)
        yield


def _manifest(directory: Path) -> Path:
    """A manifest holding only ``mlp``'s contract (the echo backend answers like it)."""
    path = directory / "manifest.json"
    Manifest(models={"mlp": BUILTINS["mlp"]}).write(path)
    return path


def _cell(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _environment() -> str:
    from importlib.metadata import version

    packages = ("fastapi", "uvicorn", "uvloop", "httptools", "aiohttp", "httpx")
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    return f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {versions}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", nargs="+", default=["h1", "aiohttp", "httpx"], choices=["h1", "aiohttp", "httpx"])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--loadgen", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo:
        echo_main(args.echo)
        return 0
    load = wrk if args.loadgen == "wrk" else python_load
    load_before = _loadavg()
    env = dict(os.environ)
    rows: list[tuple[str, list[Run], list[Run]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        echo_port = free_port()
        echo_url = f"http://127.0.0.1:{echo_port}"
        echo = ["-m", "benchmarks.gateway_proxy", "--echo", str(echo_port)]
        with _process("echo backend", echo, env, echo_url + "/ping", logs / "echo.log"):
            targets: list[tuple[str, str, dict[str, str] | None]] = [
                ("backend direct", echo_url + "/predictions/mlp", None)
            ]
            for client in args.clients:
                port = free_port()
                gw_env = {
                    **env,
                    "GATEWAY_PORT": str(port),
                    "GATEWAY_GRPC_PORT": "0",
                    "GATEWAY_TORCH_URL": echo_url,
                    "GATEWAY_HTTP_CLIENT": client,
                    "GATEWAY_MANIFEST": str(_manifest(Path(tmp))),
                    "GATEWAY_BACKENDS": json.dumps({"mlp": ["torch"]}),
                    "GATEWAY_LOG_LEVEL": "warning",
                }
                targets.append((f"gateway ({client})", f"http://127.0.0.1:{port}/v1/models/mlp/predict", gw_env))
            for name, url, target_env in targets:
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                ready = url.split("/v1/")[0] + "/health/live"
                with (
                    _process(name, ["-m", "gateway"], target_env, ready, logs / f"{len(rows)}.log")
                    if target_env
                    else contextlib.nullcontext()
                ):
                    load(url, 4, 1.0)  # warm-up, not counted
                    one = [load(url, 1, args.duration) for _ in range(args.repeats)]
                    many = [load(url, args.connections, args.duration) for _ in range(args.repeats)]
                rows.append((name, one, many))
    print(f"\nload generator: {args.loadgen}; {args.duration:g} s per run, {args.repeats} runs; median (min–max)")
    print(f"{_environment()}; load average before {load_before}, after {_loadavg()}\n")
    c = args.connections
    print(f"| target | p50 ms, 1 conn | p99 ms, 1 conn | req/s, 1 conn | req/s, {c} conn | p99 ms, {c} conn |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, one, many in rows:
        cells = [
            _cell([r.p50_ms for r in one], 3),
            _cell([r.p99_ms for r in one], 3),
            _cell([r.rps for r in one], 0),
            _cell([r.rps for r in many], 0),
            _cell([r.p99_ms for r in many], 2),
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
