"""The gateway's own steps per request, in one process, and a bare route on the same ASGI server.

``python -m benchmarks.gateway_micro [--repeats 5] [--seconds 5]``

In-process (``timeit``, median of ``--repeats`` runs, µs per call), for one ``mlp``
instance per request as the gateway handles it:

- ``validation``: parse the body and check it against the contract (:mod:`contract.tensors`);
- ``answer check``: read a backend's answer back against the contract;
- ``stats``: record one latency (HdrHistogram, sliding window);
- ``metrics``: observe one request and one backend call (Prometheus);
- ``answer JSON``: render the gateway's answer.

Then a bare FastAPI route (``{"ok": true}``) on the same uvicorn configuration the gateway
uses, driven by wrk at 1 connection for ``--seconds``: what the ASGI server and framework
cost before any gateway code runs. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from contract.tensors import parse_request, read_outputs
from gateway.metrics import Metrics
from gateway.stats import Stats
from loadtests import payload, wrk
from services.process import Process, free_port, http_probe
from stack.builtins import BUILTINS

BARE_APP = """
import sys, uvicorn
from fastapi import FastAPI
from gateway.server import header_timeout_protocol
app = FastAPI()
@app.get("/")
async def root() -> dict[str, bool]:
    return {"ok": True}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http=header_timeout_protocol(10.0),
            access_log=False, log_level="warning")
"""


def steps() -> dict[str, Callable[[], object]]:
    """Each per-request step of the gateway as a zero-argument call."""
    entry = BUILTINS["mlp"]
    body = payload.body(entry, 1, seed=0)
    answer = {"predictions": [[0.5]]}
    stats, metrics = Stats(), Metrics()
    reply = {"model": "mlp", "backend": "torch", "server": "torchserve", **answer}

    def observe() -> None:
        metrics.observe_request("mlp", "torch", "ok", 0.002)
        metrics.observe_backend("mlp", "torch", "ok", 0.002)

    return {
        "validation": lambda: parse_request(body, entry),
        "answer check": lambda: read_outputs(answer, entry, 1),
        "stats": lambda: stats.record("mlp", "torch", 0.002, "torchserve"),
        "metrics": observe,
        "answer JSON": lambda: json.dumps(reply, separators=(",", ":")),
    }


def micro(repeats: int, number: int = 20_000) -> dict[str, list[float]]:
    """µs per call of each step, one figure per repeat."""
    return {
        name: [t / number * 1e6 for t in timeit.repeat(call, number=number, repeat=repeats)]
        for name, call in steps().items()
    }


def bare_route(seconds: float, repeats: int) -> list[wrk.WrkResult]:
    """wrk at 1 connection against a bare FastAPI route on the gateway's uvicorn settings."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "bare.log"
        with Process.python("bare route", ["-c", BARE_APP, str(port)], log, env=dict(os.environ)) as proc:
            proc.wait_ready(http_probe(f"http://127.0.0.1:{port}/"), timeout_s=30)
            url = f"http://127.0.0.1:{port}/"
            wrk.run(url, b"", connections=1, duration_s=1, method="GET")  # warm-up
            return [wrk.run(url, b"", connections=1, duration_s=seconds, method="GET") for _ in range(repeats)]


def _cell(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    """Run both parts and print one Markdown table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_micro", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average {os.getloadavg()}")
    print("| step | µs per request (min / median / max) |\n| --- | --- |")
    for name, values in micro(args.repeats).items():
        print(f"| {name} | {_cell(values)} |")
    runs = bare_route(args.seconds, args.repeats)
    print(f"| bare FastAPI route on uvicorn, wrk p50 at 1 connection | {_cell([r.p50_ms * 1000 for r in runs], 0)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
