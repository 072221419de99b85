"""Benchmark the proxy alone: a trivial local backend, direct and through the gateway per HTTP client.

``python -m gateway.bench [--duration 5] [--repeats 3] [--clients aiohttp httpx]``

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
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.common import wrk as common_wrk
from services.common.procs import free_port as _free_port
from services.common.procs import terminate

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
    """One wrk run through ``services.common.wrk``; any error fails the benchmark."""
    result = common_wrk.run(url, BODY.encode(), connections=connections, duration_s=duration)
    if result.non_2xx or result.socket_errors:
        raise RuntimeError(
            f"wrk saw {result.non_2xx} non-2xx answers and {result.socket_errors} socket errors at {url}"
        )
    return Run(result.p50_ms, result.p99_ms, result.rps)


def python_load(url: str, connections: int, duration: float) -> Run:
    """A bounded closed-loop load: ``connections`` workers for ``duration`` seconds."""
    import aiohttp
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, 60_000_000, 3)

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
                    hist.record_value(max(1, round((time.perf_counter() - start) * 1e6)))

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return time.perf_counter() - began

    elapsed = asyncio.run(main())
    return Run(
        hist.get_value_at_percentile(50) / 1000,
        hist.get_value_at_percentile(99) / 1000,
        hist.get_total_count() / elapsed,
    )


@contextlib.contextmanager
def _process(cmd: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    import urllib.request

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                with urllib.request.urlopen(ready_url, timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd} not ready within 30 s") from None
                time.sleep(0.1)
        yield
    finally:
        terminate(proc, 10)


def _manifest(directory: Path) -> Path:
    path = directory / "manifest.json"
    model = {
        "input": {"name": "x", "dtype": "float32", "shape": [None, 10], "value_range": [-3, 3]},
        "output": {"name": "probabilities", "dtype": "float32", "shape": [None, 1]},
        "max_batch": 1024,
    }
    path.write_text(json.dumps({"format": 1, "models": {"mlp": model}}))
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
    parser = argparse.ArgumentParser(prog="python -m gateway.bench", description=__doc__.split("\n\n")[0])
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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path.cwd()), os.environ.get("PYTHONPATH")]))}
    rows: list[tuple[str, list[Run], list[Run]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        echo_port = _free_port()
        echo_url = f"http://127.0.0.1:{echo_port}"
        with _process([sys.executable, "-m", "gateway.bench", "--echo", str(echo_port)], env, echo_url + "/ping"):
            targets: list[tuple[str, str, dict[str, str] | None]] = [
                ("backend direct", echo_url + "/predictions/mlp", None)
            ]
            for client in args.clients:
                port = _free_port()
                gw_env = {
                    **env,
                    "GATEWAY_PORT": str(port),
                    "GATEWAY_TORCH_URL": echo_url,
                    "GATEWAY_HTTP_CLIENT": client,
                    "GATEWAY_MANIFEST": str(_manifest(Path(tmp))),
                    "GATEWAY_BACKENDS": json.dumps({"mlp": ["torch"]}),
                    "GATEWAY_LOG_LEVEL": "warning",
                }
                targets.append((f"gateway ({client})", f"http://127.0.0.1:{port}/v1/models/mlp/predict", gw_env))
            for name, url, target_env in targets:
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                with (
                    _process([sys.executable, "-m", "gateway"], target_env, url.split("/v1/")[0] + "/health/live")
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
