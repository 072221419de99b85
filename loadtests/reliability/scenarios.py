"""The measured reliability scenarios: each starts its own gateway in front of a running stack's servers.

A scenario never touches the stack's own gateway: it starts ``python -m gateway`` on a free
loopback port with the stack's backend URLs and key file (TorchServe behind the fault proxy
of ``loadtests/reliability/faultproxy.py`` where a fault is injected), offers a bounded open-loop load
(:mod:`.load`), watches the gateway (:mod:`.monitor`) and returns one :class:`Row` of the
table in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from services.common.procs import free_port as _free_port
from services.common.procs import terminate
from services.stack import REPO, StackPaths, stop_service

from .faultproxy import FaultProxy, Mode
from .load import (
    CLIENT_FULL,
    OK,
    Phase,
    Run,
    between,
    drive,
    failed_ratio,
    percentile_ms,
    steady_after,
    throughput,
)
from .monitor import Watch

FAULTS = ("latency", "reset", "blackhole", "down", "kill")
FAILOVER = {"digits": {"policy": "failover", "order": ["torch", "tf"]}}
MODEL = "digits"


def fixed(backend: str) -> dict[str, dict[str, str]]:
    """``GATEWAY_POLICIES`` routing every digits request to ``backend``."""
    return {MODEL: {"policy": "fixed", "backend": backend}}


@dataclass
class Row:
    """One line of the reliability table."""

    test: str
    load: str
    fault: str
    requests: int
    failed_ratio: float
    p99_before_ms: float
    p99_during_ms: float
    p99_after_ms: float
    breaker_open_s: float | None
    recovery_s: float | None
    rss_start_mb: float
    rss_peak_mb: float
    rss_growth: float
    fds: tuple[int, int]
    gateway_restarted: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StackInfo:
    """What a scenario needs from ``stack.json`` (written by ``services.stack up``)."""

    info: dict[str, Any]
    paths: StackPaths

    @classmethod
    def load(cls, stack_json: Path) -> StackInfo:
        info = json.loads(stack_json.read_text())
        return cls(info, StackPaths(stack_json.parent, Path(info["log_dir"])))

    @property
    def torch_port(self) -> int:
        return int(self.info["torch"].rsplit(":", 1)[1])


def body(rows: int = 1, seed: int = 0) -> bytes:
    """A digits request (pixel values 0-16), the same for every scenario."""
    x = np.random.default_rng(seed).uniform(0, 16, size=(rows, 8, 8)).astype(np.float32)
    return json.dumps({"instances": x.tolist()}).encode()


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def gateway(stack: StackInfo, log_dir: Path, **env: str) -> Iterator[GatewayProcess]:
    """``python -m gateway`` on a free port with the stack's backends and ``env`` (GATEWAY_* names)."""
    port = _free_port()
    full = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_TORCH_URL": stack.info["torch"],
        "GATEWAY_TORCH_KEY_FILE": stack.info["torch_key_file"],
        "GATEWAY_TF_URL": stack.info["tf_rest"],
        "GATEWAY_BACKENDS": json.dumps(stack.info["gateway_backends"]),
        "GATEWAY_LOG_LEVEL": "warning",
        **env,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"gateway-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO, env=full, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not live after 30 s:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield GatewayProcess(proc, url, log)
    finally:
        terminate(proc, 15)


def _run(url: str, phases: list[Phase], concurrency: int, **kwargs: Any) -> Run:
    import asyncio

    return asyncio.run(drive(f"{url}/v1/models/{MODEL}/predict", body(), phases, concurrency=concurrency, **kwargs))


def capacity(
    stack: StackInfo, log_dir: Path, *, seconds: float = 10.0, concurrency: int = 16, env: dict[str, str] | None = None
) -> float:
    """Saturation throughput (200s per second) of a fresh gateway at ``concurrency`` connections, after warm-up."""
    with gateway(stack, log_dir, **(env or {})) as gw:
        _run(gw.url, [Phase("warm", 2.0, 200)], concurrency)
        run = _run(gw.url, [Phase("measure", seconds, 5000)], concurrency)
        start, end = run.window("measure")
        return throughput(run.samples, start, end)


def _mb(value: int) -> float:
    return round(value / 2**20, 1)


def write_samples(run: Run, path: Path) -> None:
    """Every sample as CSV (start and latency in seconds), with the phases' start times in a comment line."""
    lines = ["# phases " + json.dumps(run.phase_starts) + " actions_done " + json.dumps(run.actions_done)]
    lines.append("start_s,latency_s,status,backend,error")
    lines += [f"{s.start:.4f},{s.latency_s:.5f},{s.status},{s.backend},{s.error}" for s in run.samples]
    path.write_text("\n".join(lines) + "\n")


def _row(test: str, load: str, fault: str, run: Run, watch: Watch, gw: GatewayProcess, pid: int, **kw: Any) -> Row:
    write_samples(run, gw.log.parent / f"{test}-samples.csv")
    sent = [s for s in run.samples if s.status != CLIENT_FULL]
    rss = [p.rss_bytes for p in watch.process]
    return Row(
        test=test,
        load=load,
        fault=fault,
        requests=len(sent),
        failed_ratio=round(failed_ratio(sent), 5),
        p99_before_ms=round(percentile_ms(between(sent, *run.window("before")), 99), 1),
        p99_during_ms=round(percentile_ms(between(sent, *run.window("during")), 99), 1),
        p99_after_ms=round(percentile_ms(between(sent, *run.window("after")), 99), 1),
        rss_start_mb=_mb(rss[0]) if rss else 0.0,
        rss_peak_mb=_mb(max(rss)) if rss else 0.0,
        rss_growth=round(rss[-1] / rss[0] - 1, 4) if rss else 0.0,
        fds=(watch.process[0].fds, max(p.fds for p in watch.process)) if watch.process else (0, 0),
        gateway_restarted=gw.proc.poll() is not None or gw.proc.pid != pid,
        **kw,
    )


def fault(
    stack: StackInfo,
    kind: Mode | str,
    log_dir: Path,
    *,
    rate: float,
    before_s: float = 5.0,
    during_s: float = 10.0,
    after_s: float = 10.0,
    latency_s: float = 0.2,
    read_timeout_s: float = 2.0,
) -> Row:
    """One fault on TorchServe (``latency``, ``reset``, ``blackhole``, ``down`` via the proxy; ``kill``: the real
    server stopped, then restarted with ``services.stack restart``) under ``rate`` req/s with the failover policy."""
    with FaultProxy(stack.torch_port) as proxy:
        env = {
            "GATEWAY_TORCH_URL": proxy.url,
            "GATEWAY_POLICIES": json.dumps(FAILOVER),
            "GATEWAY_READ_TIMEOUT_S": str(read_timeout_s),
        }
        with gateway(stack, log_dir, **env) as gw:
            pid = gw.proc.pid
            _run(gw.url, [Phase("warm", 2.0, rate)], 64)
            start_fault: Callable[[], None]
            end_fault: Callable[[], None]
            if kind == "kill":
                start_fault = lambda: stop_service(stack.paths, "torch_api")  # noqa: E731
                end_fault = lambda: _restart(stack, "torch_api")  # noqa: E731
            else:
                mode: Mode = kind  # type: ignore[assignment]
                start_fault = lambda: proxy.set_mode(mode, latency_s)  # noqa: E731
                end_fault = lambda: proxy.set_mode("pass")  # noqa: E731
            phases = [
                Phase("before", before_s, rate),
                Phase("during", during_s, rate, start_fault),
                Phase("after", after_s, rate, end_fault),
            ]
            with Watch(pid, gw.url, interval_s=0.1) as watch:
                run = _run(gw.url, phases, 256)
            before = between(run.samples, *run.window("before"))
            baseline = percentile_ms(before, 99)
            fault_start = run.phase_starts["during"]
            fault_end = run.actions_done.get("after", run.phase_starts["after"])  # kill: when the server is back
            opened = watch.first_change("torch", "open", run.t0 + fault_start)
            recovery = steady_after(
                run.samples,
                fault_end,
                run.phase_ends["after"],
                p99_ms=max(2 * baseline, baseline + 20),
                backend="torch",
            )
            during = between(run.samples, fault_start, fault_end)
            load = f"{rate:g} req/s open loop, digits x1, failover torch->tf"
            desc = {
                "latency": f"+{latency_s * 1000:g} ms on every TorchServe answer",
                "reset": "TorchServe connections reset",
                "blackhole": f"TorchServe accepts, never answers (read timeout {read_timeout_s:g} s)",
                "down": "TorchServe port refuses connections",
                "kill": "TorchServe killed (SIGTERM), restarted with services.stack restart",
            }[kind]
            return _row(
                kind,
                load,
                f"{desc}, {during_s:g} s" if kind != "kill" else desc,
                run,
                watch,
                gw,
                pid,
                breaker_open_s=None if opened is None else round(opened - run.t0 - fault_start, 2),
                recovery_s=recovery,
                extra={
                    "failed_during": round(failed_ratio(during), 5),
                    "served_by_tf_during": sum(s.backend == "tf" for s in during),
                    "statuses": _statuses(run),
                    "fault_s": round(fault_end - fault_start, 2),
                    "proxy": asdict(proxy.counters),
                },
            )


def _restart(stack: StackInfo, service: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.stack", "restart", service],
        cwd=REPO, env={**os.environ, "STACK_RUN_DIR": str(stack.paths.run_dir),
                       "STACK_LOG_DIR": str(stack.paths.log_dir)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"restart {service} failed:\n{done.stdout}\n{done.stderr}")


def _statuses(run: Run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in run.samples:
        counts[str(s.status)] = counts.get(str(s.status), 0) + 1
    return counts


def overload(stack: StackInfo, log_dir: Path, *, max_concurrency: int = 4, seconds: float = 15.0) -> Row:
    """Capacity at ``max_concurrency`` connections, then 2x that offered (shedding), then half (recovery)."""
    env = {"GATEWAY_MAX_CONCURRENCY": str(max_concurrency)}
    cap = capacity(stack, log_dir, concurrency=max_concurrency, env=env)
    with gateway(stack, log_dir, **env) as gw:
        pid = gw.proc.pid
        _run(gw.url, [Phase("warm", 2.0, cap / 2)], 256)
        phases = [Phase("before", 5.0, cap / 2), Phase("during", seconds, 2 * cap), Phase("after", 10.0, cap / 2)]
        with Watch(pid, gw.url) as watch:
            run = _run(gw.url, phases, 256)
        start, end = run.window("during")
        during = between(run.samples, start, end)
        shed = [s for s in during if s.status == 503]
        good = throughput(run.samples, start, end)
        baseline = percentile_ms(between(run.samples, *run.window("before")), 99)
        recovery = steady_after(
            run.samples, *run.window("after"), p99_ms=max(2 * baseline, baseline + 20), backend="torch"
        )
        return _row(
            "overload",
            f"2x capacity ({2 * cap:.0f} req/s offered; capacity {cap:.0f} req/s at {max_concurrency} connections)",
            f"none; GATEWAY_MAX_CONCURRENCY={max_concurrency}",
            run,
            watch,
            gw,
            pid,
            breaker_open_s=None,
            recovery_s=recovery,
            extra={
                "capacity_rps": round(cap, 1),
                "goodput_rps": round(good, 1),
                "goodput_share": round(good / cap, 3) if cap else None,
                "shed_503": len(shed),
                "shed_with_retry_after": sum(s.retry_after is not None for s in shed),
                "other_failures": sum(s.status not in (OK, 503) for s in during),
                "statuses": _statuses(run),
            },
        )


def soak(stack: StackInfo, log_dir: Path, *, seconds: float, share: float = 0.7, concurrency: int = 16) -> Row:
    """``share`` of capacity for ``seconds``: errors, RSS growth after warm-up, fd growth."""
    cap = capacity(stack, log_dir, concurrency=concurrency)
    rate = share * cap
    with gateway(stack, log_dir) as gw:
        pid = gw.proc.pid
        _run(gw.url, [Phase("warm", 10.0, rate)], 256)  # pools, histograms and caches filled first
        phases = [Phase("before", 1.0, rate), Phase("during", seconds, rate), Phase("after", 1.0, rate)]
        with Watch(pid, gw.url, interval_s=1.0) as watch:
            run = _run(gw.url, phases, 256)
        return _row(
            "soak",
            f"{share:.0%} of capacity ({rate:.0f} req/s; capacity {cap:.0f} req/s at {concurrency} connections)",
            f"none, {seconds:g} s",
            run,
            watch,
            gw,
            pid,
            breaker_open_s=None,
            recovery_s=None,
            extra={"capacity_rps": round(cap, 1), "statuses": _statuses(run)},
        )
