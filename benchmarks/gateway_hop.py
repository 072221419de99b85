"""One proxy hop in front of the real TorchServe, with nginx as the reference: ``python -m benchmarks.gateway_hop``.

Needs a running stack (``make up``; reads ``$STACK_RUN_DIR/stack.json``) for its TorchServe.
Starts its own targets on free loopback ports: nginx (Debian's ``nginx-light``) as a
keep-alive reverse proxy that adds TorchServe's inference key, and the gateway
(``python -m gateway``, ``X-Backend: torch``) in each variant asked for (``--variants``:
``w1`` = 1 worker, ``w2`` = 2 workers, ``w1-aiohttp`` = 1 worker with aiohttp as the
backend client, ...). For one model (default ``mlp``, one instance per request) it drives
TorchServe directly and every target with ``wrk``, interleaved within each repeat so all
see the same machine, at 1 connection and at ``--connections``, and reads each target's
CPU time (user + system of its processes, children included; psutil) around every run.

Per target: added p50 at 1 connection (over direct), throughput at ``--connections`` (and
as a share of direct and of nginx's), CPU µs per request at ``--connections`` (and at 1).
Cells are min / median / max over ``--repeats``; the goals of issue 15 are judged on the
medians. ``--pin`` puts the proxies on CPU 1 and TorchServe, the TF server and wrk on CPU
0 (``sched_setaffinity``, as ``taskset`` does), so a proxy has a core of its own.
``--profile`` then samples the first gateway target with py-spy during one more run and
prints where its CPU goes. ``--floor`` adds uvicorn (uvloop, httptools, as the gateway runs
it) answering a constant from a bare ASGI app, with no backend behind it: the CPU a Python
ASGI server spends per request before any proxying, the floor under every gateway variant.
Not a test.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from contract.keys import read_key
from contract.stackinfo import StackInfo
from loadtests import payload, wrk
from services.process import Process, free_port, http_probe, port_probe

NGINX_CONF = """
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    upstream torchserve {{ server {upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{
            proxy_pass http://torchserve;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer {key}";
        }}
    }}
}}
"""


@dataclass
class Target:
    """Something wrk drives: a URL, its headers, and the processes whose CPU time is its cost."""

    name: str
    url: str
    headers: dict[str, str]
    pids: list[int] = field(default_factory=list)
    runs: dict[int, list[tuple[wrk.WrkResult, float]]] = field(default_factory=dict)

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                proc = psutil.Process(pid)
                for each in [proc, *proc.children(recursive=True)]:
                    times = each.cpu_times()
                    total += times.user + times.system
            except psutil.Error:
                continue
        return total


def _cell(values: list[float], digits: int = 2) -> str:
    return f"{min(values):,.{digits}f} / {statistics.median(values):,.{digits}f} / {max(values):,.{digits}f}"


@contextmanager
def nginx(upstream: str, key: str, workers: int, directory: Path) -> Iterator[Target]:
    """nginx as a keep-alive reverse proxy to TorchServe that adds the inference key."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    prefix = directory / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, prefix=prefix, upstream=upstream, port=port, key=key))
    cmd = [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]
    with Process("nginx", cmd, prefix / "stdout.log") as proc:
        proc.wait_ready(port_probe("127.0.0.1", port), timeout_s=20)
        yield Target(f"nginx ({workers} worker{'s' if workers > 1 else ''})", f"http://127.0.0.1:{port}", {},
                     [proc.pid])  # fmt: skip


def gateway_app() -> Any:
    """The gateway's app from its environment, for an ASGI server other than its own (``w1-granian``)."""
    from gateway.app import create_app
    from gateway.config import load_settings

    return create_app(load_settings())


@contextmanager
def gateway(info: StackInfo, variant: str, model: str, directory: Path) -> Iterator[Target]:
    """``python -m gateway`` in ``variant``: ``w<N>`` workers, optionally ``-aiohttp`` / ``-httpx`` as its client.

    ``w1-granian``: the same app served by granian (Rust, ``--interface asgi``, uvloop, one
    worker) instead of uvicorn, the ASGI server alternative issue 15 asked to measure.
    """
    workers, _, client = variant.partition("-")
    server = "granian" if client == "granian" else "uvicorn"
    client = "" if client == "granian" else client
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRPC_PORT": "0",
        "GATEWAY_WORKERS": workers.removeprefix("w"),
        "GATEWAY_HTTP_CLIENT": client or "h1",
        "GATEWAY_TORCH_URL": info.torch,
        "GATEWAY_TORCH_KEY_FILE": str(info.torch_key_file),
        "GATEWAY_MANIFEST": str(info.artifacts / "manifest.json"),
        "GATEWAY_BACKENDS": json.dumps({model: ["torch"]}),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    url = f"http://127.0.0.1:{port}"
    cmd = ["-m", "gateway"]
    if server == "granian":
        cmd = ["-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop", "--workers", "1",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
               "benchmarks.gateway_hop:gateway_app"]  # fmt: skip
    with Process.python(f"gateway {variant}", cmd, directory / f"gateway-{variant}.log", env=env) as p:
        p.wait_ready(http_probe(f"{url}/health/live"), timeout_s=60)
        time.sleep(1.0 if workers != "w1" else 0.0)  # every worker listening, not only the first
        yield Target(f"gateway {variant}", f"{url}/v1/models/{model}/predict", {"X-Backend": "torch"}, [p.pid])


FLOOR_ANSWER = b'{"predictions":[[0.5]]}'


async def floor_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """The least an ASGI app can do: read the body, answer a constant (``--floor``)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(FLOOR_ANSWER)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": FLOOR_ANSWER})


@contextmanager
def floor(directory: Path) -> Iterator[Target]:
    """uvicorn with :func:`floor_app`: the ASGI server's own cost per request."""
    port = free_port()
    cmd = ["-m", "uvicorn", "benchmarks.gateway_hop:floor_app", "--host", "127.0.0.1", "--port", str(port),
           "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]  # fmt: skip
    with Process.python("uvicorn floor", cmd, directory / "floor.log") as proc:
        proc.wait_ready(port_probe("127.0.0.1", port), timeout_s=30)
        yield Target("uvicorn, bare ASGI app (floor)", f"http://127.0.0.1:{port}/", {}, [proc.pid])


def _pin(info: StackInfo, proxies: list[Target]) -> None:
    """Proxies on CPU 1; the stack's servers and this process (so wrk) on CPU 0."""
    for target in proxies:
        for pid in target.pids:
            for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
                for thread in proc.threads():
                    os.sched_setaffinity(thread.id, {1})
    for pid in info.pids.values():
        for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            for thread in proc.threads():
                os.sched_setaffinity(thread.id, {0})
    os.sched_setaffinity(0, {0})


def profile(target: Target, body: bytes, connections: int, seconds: float, top: int = 25) -> str:
    """py-spy's samples of ``target``'s first process while wrk drives it: inclusive and self shares by function."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        cmd = [spy, "record", "-p", str(target.pids[0]), "-r", "250", "-d", str(int(seconds)), "-f", "raw",
               "-o", str(raw), "--nonblocking"]  # fmt: skip
        sampler = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wrk.run(target.url, body, connections=connections, duration_s=seconds, headers=target.headers, threads=2)
        sampler.wait(timeout=seconds + 30)
        lines = raw.read_text().splitlines()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";")]
        total += int(count)
        for name in set(frames):
            inclusive[name] += int(count)
        own[frames[-1]] += int(count)
    out = [f"py-spy, {target.name}, {connections} connections, {seconds:g} s: {total} samples on CPU"]
    out += ["inclusive:"] + [f"  {100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    out += ["self:"] + [f"  {100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


def _frame(text: str) -> str:
    """``func (path/file.py:12)`` -> ``func (file.py)``."""
    name, _, where = text.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved measurements and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_hop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--variants", nargs="+", default=["w1", "w2"], help="gateway variants: w<N>[-aiohttp|-httpx], w1-granian"
    )
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--pin", action="store_true", help="proxies on CPU 1, everything else on CPU 0")
    parser.add_argument("--profile", action="store_true", help="py-spy the first gateway variant afterwards")
    parser.add_argument("--floor", action="store_true", help="also a bare ASGI app on uvicorn (no backend)")
    parser.add_argument("--stack", type=Path, default=Path(os.environ.get("STACK_RUN_DIR", ".run")) / "stack.json")
    args = parser.parse_args(argv)
    info = StackInfo.read(args.stack)
    key = read_key(info.torch_key_file)
    body = payload.body(payload.load_model(args.model, info.artifacts), 1, seed=0)
    upstream = info.torch.removeprefix("http://")
    load_before = os.getloadavg()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        direct = Target(
            "TorchServe direct", f"{info.torch}/predictions/{args.model}", {"Authorization": f"Bearer {key}"}
        )
        proxies = [stack.enter_context(nginx(upstream, key, args.nginx_workers, Path(tmp)))]
        proxies += [stack.enter_context(gateway(info, v, args.model, Path(tmp))) for v in args.variants]
        for target in proxies:
            target.url += f"/predictions/{args.model}" if target.name.startswith("nginx") else ""
        if args.floor:
            proxies.append(stack.enter_context(floor(Path(tmp))))
        if args.pin:
            _pin(info, proxies)
        targets = [direct, *proxies]
        for target in targets:
            wrk.run(target.url, body, connections=4, duration_s=2, headers=target.headers)  # warm-up
        for repeat in range(args.repeats):
            for connections in (1, args.connections):
                for target in targets:
                    before = target.cpu_s()
                    result = wrk.run(target.url, body, connections=connections, duration_s=args.duration,
                                     headers=target.headers, threads=2 if connections > 1 else 1)  # fmt: skip
                    cpu_us = (target.cpu_s() - before) / max(1, result.requests) * 1e6
                    if result.non_2xx or result.socket_errors:
                        print(f"{target.name}: {result.non_2xx} non-2xx, {result.socket_errors} socket errors",
                              file=sys.stderr)  # fmt: skip
                        return 1
                    target.runs.setdefault(connections, []).append((result, cpu_us))
                    print(f"repeat {repeat + 1} c={connections:<3} {target.name:26} {result.rps:8.0f} req/s  "
                          f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  CPU {cpu_us:6.0f} µs/req  "
                          f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        print(_report(args, targets, load_before))
        if args.profile:
            gateways = [t for t in proxies if t.name.startswith("gateway")]
            if gateways:
                print("\n" + profile(gateways[0], body, args.connections, args.duration))
    return 0


def _report(args: argparse.Namespace, targets: list[Target], load_before: tuple[float, float, float]) -> str:
    c = args.connections

    def values(target: Target, connections: int, what: str) -> list[float]:
        runs = target.runs[connections]
        return [cpu if what == "cpu" else float(getattr(r, what)) for r, cpu in runs]

    def med(target: Target, connections: int, what: str) -> float:
        return float(statistics.median(values(target, connections, what)))

    direct, ref = targets[0], targets[1]
    lines = [
        f"\nmodel {args.model}, wrk {args.duration:g} s x {args.repeats} per cell, interleaved; "
        "cells min / median / max"
        f"{'; proxies pinned to CPU 1, the rest to CPU 0' if args.pin else ''}",
        f"load average before {' '.join(f'{v:.2f}' for v in load_before)}, after "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        "",
        f"| target | p50 ms, 1 conn | added p50 ms (median) | req/s, {c} conn | vs direct | vs nginx "
        f"| CPU µs/req, {c} conn | CPU µs/req, 1 conn |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in targets:
        added = "-" if t is direct else f"{med(t, 1, 'p50_ms') - med(direct, 1, 'p50_ms'):+.2f}"
        vs_direct = f"{med(t, c, 'rps') / med(direct, c, 'rps'):.0%}"
        vs_nginx = "-" if t is direct else f"{med(t, c, 'rps') / med(ref, c, 'rps'):.0%}"
        cpu = "-" if t is direct else _cell(values(t, c, "cpu"), 0)
        cpu1 = "-" if t is direct else _cell(values(t, 1, "cpu"), 0)
        lines.append(f"| {t.name} | {_cell(values(t, 1, 'p50_ms'))} | {added} | {_cell(values(t, c, 'rps'), 0)} "
                     f"| {vs_direct} | {vs_nginx} | {cpu} | {cpu1} |")  # fmt: skip
    lines.append("\ngoals (medians): gateway CPU/request ≤ 2 × nginx's; added p50 ≤ nginx's + 0.2 ms; "
                 f"req/s at {c} ≥ 90 % of nginx's")  # fmt: skip
    for t in targets[2:]:
        if t.name.startswith("uvicorn"):
            continue  # the floor is not a proxy
        cpu_ratio = med(t, c, "cpu") / med(ref, c, "cpu")
        over = med(t, 1, "p50_ms") - med(ref, 1, "p50_ms")
        share = med(t, c, "rps") / med(ref, c, "rps")
        lines.append(f"- {t.name}: CPU {cpu_ratio:.1f} × nginx ({'met' if cpu_ratio <= 2 else 'not met'}); "
                     f"p50 {over:+.2f} ms over nginx ({'met' if over <= 0.2 else 'not met'}); "
                     f"throughput {share:.0%} of nginx ({'met' if share >= 0.9 else 'not met'})")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
