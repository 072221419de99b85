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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contract.stackinfo import StackInfo
from loadtests import payload
from services.process import Process, free_port, http_probe
from stack.native import REPO, StackPaths, stop_service

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
#: ``--hedge``: the same, with a hedge to tf when torch has not answered by its live p99 (at most 5 % of requests)
HEDGE = {"after": "p99", "max_share": 0.05}
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


def paths(stack: StackInfo) -> StackPaths:
    """Where the stack keeps its pids and logs (``stack restart`` needs the same)."""
    return StackPaths(stack.run_dir, stack.log_dir)


def body(rows: int = 1, seed: int = 0) -> bytes:
    """A digits request from the manifest's contract, the same for every scenario."""
    return payload.body(payload.load_model(MODEL), rows, seed)


@dataclass(frozen=True)
class Gateway:
    """A scenario's own gateway process and its URL."""

    process: Process
    url: str


@contextlib.contextmanager
def gateway(stack: StackInfo, log_dir: Path, **env: str) -> Iterator[Gateway]:
    """``python -m gateway`` on a free port with the stack's backends and ``env`` (GATEWAY_* names)."""
    port = free_port()
    full = {
        **os.environ,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRPC_PORT": "0",
        "GATEWAY_TORCH_URL": stack.torch,
        "GATEWAY_TORCH_KEY_FILE": str(stack.torch_key_file),
        "GATEWAY_TF_URL": stack.tf_rest,
        "GATEWAY_BACKENDS": json.dumps(stack.gateway_backends),
        "GATEWAY_LOG_LEVEL": "warning",
        **env,
    }
    url = f"http://127.0.0.1:{port}"
    with Process.python("gateway", ["-m", "gateway"], log_dir / f"gateway-{port}.log", env=full) as process:
        process.wait_ready(http_probe(f"{url}/health/live"), timeout_s=30)
        yield Gateway(process, url)


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


def _row(test: str, load: str, fault: str, run: Run, watch: Watch, gw: Gateway, pid: int, **kw: Any) -> Row:
    write_samples(run, gw.process.log.parent / f"{test}-samples.csv")
    sent = [s for s in run.samples if s.status != CLIENT_FULL]
    return Row(
        test=test,
        load=load,
        fault=fault,
        requests=len(sent),
        failed_ratio=round(failed_ratio(sent), 5),
        p99_before_ms=round(percentile_ms(between(sent, *run.window("before")), 99), 1),
        p99_during_ms=round(percentile_ms(between(sent, *run.window("during")), 99), 1),
        p99_after_ms=round(percentile_ms(between(sent, *run.window("after")), 99), 1),
        rss_start_mb=_mb(watch.rss_start()),
        rss_peak_mb=_mb(watch.peak_rss()),
        rss_growth=round(watch.rss_growth(), 4),
        fds=watch.fds(),
        gateway_restarted=gw.process.returncode is not None or gw.process.pid != pid,
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
    hedge: bool = False,
) -> Row:
    """One fault on TorchServe (``latency``, ``reset``, ``blackhole``, ``down`` via the proxy; ``kill``: the real
    server stopped, then restarted with ``python -m stack restart``) under ``rate`` req/s with the failover policy."""
    with FaultProxy(stack.torch_port) as proxy:
        policies = {MODEL: {**FAILOVER[MODEL], "hedge": HEDGE}} if hedge else FAILOVER
        env = {
            "GATEWAY_TORCH_URL": proxy.url,
            "GATEWAY_POLICIES": json.dumps(policies),
            "GATEWAY_READ_TIMEOUT_S": str(read_timeout_s),
        }
        with gateway(stack, log_dir, **env) as gw:
            pid = gw.process.pid
            _run(gw.url, [Phase("warm", 2.0, rate)], 64)
            start_fault: Callable[[], None]
            end_fault: Callable[[], None]
            if kind == "kill":
                start_fault = lambda: stop_service(paths(stack), "torch_api")  # noqa: E731
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
                # hedged: some answers come from tf even when torch is healthy (the hedges past its p99)
                backend=None if hedge else "torch",
            )
            during = between(run.samples, fault_start, fault_end)
            load = f"{rate:g} req/s open loop, digits x1, failover torch->tf" + (
                f", hedge after {HEDGE['after']} (max {HEDGE['max_share']:.0%})" if hedge else ""
            )
            desc = {
                "latency": f"+{latency_s * 1000:g} ms on every TorchServe answer",
                "reset": "TorchServe connections reset",
                "blackhole": f"TorchServe accepts, never answers (read timeout {read_timeout_s:g} s)",
                "down": "TorchServe port refuses connections",
                "kill": "TorchServe killed (SIGTERM), restarted with `python -m stack restart`",
            }[kind]
            return _row(
                kind + (" (hedged)" if hedge else ""),
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
                    "p99_ms_during_fault": round(percentile_ms(during, 99), 1),
                    "gateway_events": _events(gw.url),
                },
            )


def _restart(stack: StackInfo, service: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stack", "restart", service],
        cwd=REPO, env={**os.environ, "STACK_RUN_DIR": str(stack.run_dir), "STACK_LOG_DIR": str(stack.log_dir)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"restart {service} failed:\n{done.stdout}\n{done.stderr}")


def _events(url: str) -> dict[str, Any]:
    """The gateway's retry and hedge counts (``/v1/stats``) at the end of the run."""
    import httpx

    try:
        events: dict[str, Any] = httpx.get(f"{url}/v1/stats", timeout=5).json().get("events", {})
    except (httpx.HTTPError, ValueError):
        return {}
    return events


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
        pid = gw.process.pid
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


def rss_series(watch: Watch) -> list[dict[str, float]]:
    """The watched process's samples from the first: seconds since it, RSS in MB, open fds (saved with the row)."""
    if not watch.process:
        return []
    t0 = watch.process[0].t
    return [{"t_s": round(p.t - t0, 1), "rss_mb": _mb(p.rss_bytes), "fds": p.fds} for p in watch.process]


def write_rss(series: list[dict[str, float]], path: Path) -> None:
    """The RSS series as CSV beside the run's samples."""
    lines = ["t_s,rss_mb,fds", *(f"{p['t_s']},{p['rss_mb']},{p['fds']}" for p in series)]
    path.write_text("\n".join(lines) + "\n")


def soak(stack: StackInfo, log_dir: Path, *, seconds: float, share: float = 0.5, concurrency: int = 16) -> Row:
    """``share`` of capacity for ``seconds``: errors, RSS growth after warm-up, fd growth; the row keeps the
    gateway's RSS series (``extra["rss_series"]``, and ``soak-rss.csv`` beside the samples)."""
    cap = capacity(stack, log_dir, concurrency=concurrency)
    rate = share * cap
    with gateway(stack, log_dir) as gw:
        pid = gw.process.pid
        _run(gw.url, [Phase("warm", 10.0, rate)], 256)  # pools, histograms and caches filled first
        phases = [Phase("before", 1.0, rate), Phase("during", seconds, rate), Phase("after", 1.0, rate)]
        with Watch(pid, gw.url, interval_s=1.0) as watch:
            run = _run(gw.url, phases, 256)
        series = rss_series(watch)
        write_rss(series, gw.process.log.parent / "soak-rss.csv")
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
            extra={"capacity_rps": round(cap, 1), "statuses": _statuses(run), "rss_series": series},
        )
