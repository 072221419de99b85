"""Locust in-process (its library API), one short headless run at a time.

Why in-process rather than ``locust --headless --csv`` subprocesses: the runner must drop
the warm-up from the figures at an exact moment (reset the stats, keep the warm-up
counts so the gateway's counters can be reconciled), change the offered rate between
SLO probes without paying a process start each time, stop users gracefully so every
request the servers counted is also counted here, and measure its own CPU share over
exactly the measured window. The raw figures are still Locust's own CSV files, written
by Locust's ``StatsCSV``. Importing this module monkey-patches the process with gevent
(as ``import locust`` does), so only the runner imports it; the tests start the runner as
a subprocess.
"""

# mypy: disable-error-code="no-untyped-call"
# (locust ships types, but not for Events and EventHook)
from __future__ import annotations

import copy
import csv
import json
import math
import statistics
import sys
import time
from argparse import Namespace
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import psutil  # type: ignore[import-untyped]
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.event import Events
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from loadtests import locustfile

#: The load generator counts as saturated above this share of one core.
SATURATED_CPU_PERCENT = 90.0
#: Users started per second (Locust warns above 100); warm-ups and settle times cover the ramp.
SPAWN_RATE = 100


def options(args: list[str]) -> Namespace:
    """Locust's parsed options, including the locustfile's own (``--model``, ``--stack``, ...)."""
    opts: Namespace = get_parser().parse_args(["-f", locustfile.__file__, "--headless", *args])
    return opts


@dataclass
class Collector:
    """Exact latencies (Locust's stats round to whole ms) and the gateway's Server-Timing, per run."""

    samples: list[float] = field(default_factory=list)
    gateway_ms: list[float] = field(default_factory=list)
    backend_ms: list[float] = field(default_factory=list)

    def reset(self) -> None:
        self.samples.clear()
        self.gateway_ms.clear()
        self.backend_ms.clear()

    def on_request(self, response_time: float, exception: Any = None, response: Any = None, **_: Any) -> None:
        if exception is not None:
            return
        self.samples.append(response_time)
        timing = response.headers.get("Server-Timing") if response is not None else None
        if timing:
            for part in timing.split(","):
                name, _, dur = part.strip().partition(";dur=")
                if name == "gateway" and dur:
                    self.gateway_ms.append(float(dur))
                elif name == "backend" and dur:
                    self.backend_ms.append(float(dur))


@dataclass
class RunResult:
    """One measured run, with where its raw files are."""

    label: str
    target: str
    users: int
    pace: float
    duration_s: float
    requests: int
    failures: int
    rps: float
    p99_ms: float | None
    warmup_requests: int
    warmup_failures: int
    loadgen_cpu_percent: float
    csv: str
    failures_csv: str
    samples: str
    server_timing: dict[str, float | int | None]

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Engine:
    """Runs users of one target for a bounded time and writes Locust's CSVs under ``out``."""

    def __init__(self, base_args: list[str], out: Path) -> None:
        self.base_options = options(base_args)
        self.out = out
        (out / "csv").mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(parents=True, exist_ok=True)
        self.collector = Collector()
        self.process = psutil.Process()

    def _environment(self, target: str, pace: float) -> tuple[Environment, Any]:
        opts = copy.copy(self.base_options)
        opts.pace = pace
        user_class = locustfile.USER_FOR_TARGET[target]
        # fresh events per run: runners add listeners, which would pile up on the global ones
        events = Events()
        events.test_start.add_listener(locustfile.configure)
        events.request.add_listener(self.collector.on_request)
        env = Environment(user_classes=[user_class], events=events, parsed_options=opts, stop_timeout=10)
        return env, env.create_local_runner()

    def run(
        self, label: str, target: str, users: int, duration_s: float, warmup_s: float, pace: float = 0.0
    ) -> RunResult:
        """``users`` users for ``warmup_s`` (dropped) then ``duration_s`` (measured)."""
        env, runner = self._environment(target, pace)
        try:
            runner.start(users, spawn_rate=SPAWN_RATE)
            if warmup_s > 0:
                self._watch(env, label, target, warmup_s, "warm-up")
            warm_requests, warm_failures = env.stats.total.num_requests, env.stats.total.num_failures
            env.stats.reset_all()
            self.collector.reset()
            cpu0, t0 = self.process.cpu_times(), time.monotonic()
            self._watch(env, label, target, duration_s, "measure")
            cpu1, t1 = self.process.cpu_times(), time.monotonic()
            runner.stop()  # graceful: users finish the request in flight
            return self._result(env, label, target, users, pace, t1 - t0, warm_requests, warm_failures, cpu0, cpu1)
        finally:
            runner.quit()

    def steps(self, label: str, target: str, users: list[int], step_s: float, settle_s: float) -> list[RunResult]:
        """Users rising through ``users``; each step measured for ``step_s`` after ``settle_s``."""
        env, runner = self._environment(target, 0.0)
        results = []
        try:
            for count in users:
                runner.start(count, spawn_rate=SPAWN_RATE)
                self._watch(env, label, target, settle_s, f"{count} users settle")
                env.stats.reset_all()
                self.collector.reset()
                cpu0, t0 = self.process.cpu_times(), time.monotonic()
                self._watch(env, label, target, step_s, f"{count} users")
                cpu1, t1 = self.process.cpu_times(), time.monotonic()
                results.append(self._result(env, f"{label}_u{count}", target, count, 0.0, t1 - t0, 0, 0, cpu0, cpu1))
            runner.stop()
        finally:
            runner.quit()
        return results

    def _watch(self, env: Environment, label: str, target: str, seconds: float, phase: str) -> None:
        """Sleep ``seconds`` while printing progress about once a second."""
        start = time.monotonic()
        deadline = start + seconds
        while (left := deadline - time.monotonic()) > 0:
            gevent.sleep(min(1.0, left))
            total = env.stats.total
            elapsed = time.monotonic() - start
            p50 = total.get_response_time_percentile(0.5) if total.num_requests else None
            print(
                f"  {label:<28} {phase:<16} {elapsed:4.1f}/{seconds:.1f}s "
                f"req {total.num_requests:>6}  fail {total.num_failures:>4}  "
                f"{total.num_requests / elapsed:7.1f} req/s  p50 {p50 if p50 is not None else '-'} ms",
                file=sys.stderr,
                flush=True,
            )

    def _result(
        self, env: Environment, label: str, target: str, users: int, pace: float, seconds: float,
        warm_requests: int, warm_failures: int, cpu0: Any, cpu1: Any,
    ) -> RunResult:  # fmt: skip
        stats_path = self.out / "csv" / f"{label}_stats.csv"
        failures_path = self.out / "csv" / f"{label}_failures.csv"
        writer = StatsCSV(env, PERCENTILES_TO_REPORT)
        with stats_path.open("w", newline="") as f:
            writer.requests_csv(csv.writer(f))
        with failures_path.open("w", newline="") as f:
            writer.failures_csv(csv.writer(f))
        samples_path = self.out / "samples" / f"{label}.json"
        samples_path.write_text(json.dumps([round(x, 3) for x in self.collector.samples]))
        total = env.stats.total
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / seconds * 100 if seconds > 0 else 0.0
        timing: dict[str, float | int | None] = {
            "count": len(self.collector.gateway_ms),
            "gateway_ms_median": statistics.median(self.collector.gateway_ms) if self.collector.gateway_ms else None,
            "backend_ms_median": statistics.median(self.collector.backend_ms) if self.collector.backend_ms else None,
        }
        p99 = total.get_response_time_percentile(0.99) if total.num_requests else None
        return RunResult(
            label=label,
            target=target,
            users=users,
            pace=pace,
            duration_s=round(seconds, 3),
            requests=total.num_requests,
            failures=total.num_failures,
            rps=total.total_rps if math.isfinite(total.total_rps) else 0.0,
            p99_ms=p99,
            warmup_requests=warm_requests,
            warmup_failures=warm_failures,
            loadgen_cpu_percent=round(cpu, 1),
            csv=str(stats_path.relative_to(self.out)),
            failures_csv=str(failures_path.relative_to(self.out)),
            samples=str(samples_path.relative_to(self.out)),
            server_timing=timing,
        )
