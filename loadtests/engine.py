"""Locust in-process (its library API), one bounded headless run at a time, measured in windows.

Why in-process rather than ``locust --headless --csv`` subprocesses: the runner must drop
the warm-up at an exact moment (keeping its counts so the gateway's counters can be
reconciled), measure window after window until the stability rule holds
(:mod:`loadtests.stability`), change the offered rate between SLO probes without paying a
process start each time, stop users gracefully so every request the servers counted is
also counted here, and measure its own CPU share over exactly the measured windows.

Every published figure is computed from the exact per-request latencies this module
collects, through HdrHistogram (:mod:`contract.latency`); Locust's own CSVs (whole
milliseconds, its own percentile estimator) are still written, as raw files beside the
figures. Importing this module monkey-patches the process with gevent (as ``import
locust`` does), so only the runner imports it; the tests start the runner as a subprocess.
"""

# mypy: disable-error-code="no-untyped-call"
# (locust ships types, but not for Events and EventHook)
from __future__ import annotations

import copy
import csv
import json
import sys
import time
from argparse import Namespace
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
import psutil  # type: ignore[import-untyped]
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.event import Events
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from loadtests import locustfile, stability
from loadtests.hostload import HostLoad

#: The load generator counts as saturated above this share of one core.
SATURATED_CPU_PERCENT = 90.0
#: Users started per second at least (Locust warns above 100; open-loop probes need hundreds at once).
SPAWN_RATE = 100


def options(args: list[str]) -> Namespace:
    """Locust's parsed options, including the locustfile's own (``--model``, ``--stack``, ...)."""
    opts: Namespace = get_parser().parse_args(["-f", locustfile.__file__, "--headless", *args])
    return opts


@dataclass(frozen=True)
class Windows:
    """How a run is measured: windows of ``window_s`` until stable, between ``min_windows`` and ``max_windows``.

    A window stays open past ``window_s`` until it holds ``min_requests`` (enough for the figure's p99 once three
    are merged: :data:`loadtests.stability.WINDOW_MIN_REQUESTS`), but never past ``max_window_s``.
    """

    window_s: float = 1.0
    min_windows: int = stability.WINDOW_COUNT
    max_windows: int = 5
    tolerance: float = stability.TOLERANCE
    max_window_s: float = 3.0
    min_requests: int = stability.WINDOW_MIN_REQUESTS


@dataclass
class Collector:
    """Exact latencies (Locust's stats round to whole ms), failures and Server-Timing, per window."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)

    def reset(self) -> None:
        self.latencies = []
        self.failures = 0
        self.timings = {}

    def take(self, seconds: float) -> stability.Window:
        window = stability.Window(seconds, self.latencies, self.failures, self.timings)
        self.reset()
        return window

    def on_request(
        self, response_time: float, exception: Any = None, response: Any = None, context: Any = None, **_: Any
    ) -> None:
        # an open-loop request that went out late counts from when it was due (LoadGen's rule)
        late = float((context or {}).get("late_ms", 0.0))
        self.latencies.append(response_time + late)
        if late:
            self.timings.setdefault("late", []).append(late)
        if exception is not None:
            self.failures += 1
            return
        timing = response.headers.get("Server-Timing") if response is not None else None
        if timing:
            for part in timing.split(","):
                name, _, dur = part.strip().partition(";dur=")
                if name in ("gateway", "backend") and dur:
                    self.timings.setdefault(name, []).append(float(dur))


@dataclass
class RunResult:
    """One measured run: its figure (stable windows merged), the generator's headroom, its raw files."""

    label: str
    target: str
    users: int
    rate: float | None
    figure: dict[str, Any]
    warmup_requests: int
    warmup_failures: int
    loadgen_cpu_percent: float
    csv: str
    failures_csv: str
    samples: str
    #: every request of the measured windows, not only the figure's (the gateway saw them all)
    sent_requests: int = 0
    server: dict[str, Any] = field(default_factory=dict)
    #: who used the CPU during the measured windows (:mod:`loadtests.hostload`)
    host: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return int(self.figure["requests"])

    @property
    def failures(self) -> int:
        return int(self.figure["failures"])

    @property
    def rps(self) -> float:
        return float(self.figure["rps"])

    @property
    def p99_ms(self) -> float | None:
        return self.figure["p99_ms"]  # type: ignore[no-any-return]

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(requests=self.requests, failures=self.failures, rps=self.rps, p99_ms=self.p99_ms)
        data["stable"] = self.figure["stable"]
        data["achieved_ratio"] = self.rps / self.rate if self.rate else None
        return data


Snapshot = Callable[[], Any]


class Engine:
    """Runs users of one target for a bounded time and writes Locust's CSVs under ``out``."""

    def __init__(
        self, base_args: list[str], out: Path, seed: int = 0, stack_pids: dict[str, int] | None = None
    ) -> None:
        self.base_options = options(base_args)
        self.host = HostLoad(stack_pids or {})
        self.out = out
        self.seed = seed
        (out / "csv").mkdir(parents=True, exist_ok=True)
        (out / "samples").mkdir(parents=True, exist_ok=True)
        self.collector = Collector()
        self.process = psutil.Process()

    def _environment(self, target: str, pace: float, label: str) -> tuple[Environment, Any]:
        opts = copy.copy(self.base_options)
        opts.pace = pace
        opts.arrival_seed = self.seed
        opts.arrival_label = label
        user_class = locustfile.USER_FOR_TARGET[target]
        # fresh events per run: runners add listeners, which would pile up on the global ones
        events = Events()
        events.test_start.add_listener(locustfile.configure)
        events.request.add_listener(self.collector.on_request)
        env = Environment(user_classes=[user_class], events=events, parsed_options=opts, stop_timeout=10)
        return env, env.create_local_runner()

    def run(
        self,
        label: str,
        target: str,
        users: int,
        warmup_s: float,
        windows: Windows,
        rate: float | None = None,
        snapshot: Snapshot | None = None,
    ) -> RunResult:
        """``users`` users for ``warmup_s`` (dropped), then windows until stable.

        With ``rate``, the users offer Poisson arrivals at ``rate`` req/s in all (open loop);
        without, each sends its next request as soon as its answer is back (closed loop).
        ``snapshot`` (the servers' metrics) is taken before the first and after the last window.
        """
        env, runner = self._environment(target, rate / users if rate else 0.0, label)
        spawn_rate = max(SPAWN_RATE, users * 4)
        try:
            runner.start(users, spawn_rate=spawn_rate)
            warmup_s += users / spawn_rate  # every user started before anything is measured
            if warmup_s > 0:
                self._watch(env, label, warmup_s, "warm-up")
            warm_requests, warm_failures = env.stats.total.num_requests, env.stats.total.num_failures
            env.stats.reset_all()
            self.collector.reset()
            before = snapshot() if snapshot else None
            host0 = self.host.sample()
            cpu0, t0 = self.process.cpu_times(), time.monotonic()
            figure = self._windows(env, label, windows)
            cpu1, t1 = self.process.cpu_times(), time.monotonic()
            host = self.host.between(host0, self.host.sample(), t1 - t0)
            host["requests"] = env.stats.total.num_requests  # the windows' requests: CPU per request
            after = snapshot() if snapshot else None
            runner.stop()  # graceful: users finish the request in flight
            result = self._result(env, label, target, users, rate, figure, warm_requests, warm_failures,
                                  _cpu(cpu0, cpu1, t1 - t0))  # fmt: skip
            if snapshot:
                result.server = {"before": before, "after": after}
            result.host = host
            return result
        finally:
            runner.quit()

    def steps(self, label: str, target: str, users: list[int], settle_s: float, windows: Windows) -> list[RunResult]:
        """Users rising through ``users`` (closed loop); each step measured in windows after ``settle_s``."""
        env, runner = self._environment(target, 0.0, label)
        results = []
        try:
            for count in users:
                runner.start(count, spawn_rate=max(SPAWN_RATE, count * 4))
                self._watch(env, label, settle_s, f"{count} users settle")
                env.stats.reset_all()
                self.collector.reset()
                host0 = self.host.sample()
                cpu0, t0 = self.process.cpu_times(), time.monotonic()
                figure = self._windows(env, f"{label} {count}u", windows)
                cpu1, t1 = self.process.cpu_times(), time.monotonic()
                step_label = f"{label}_u{count}"
                result = self._result(env, step_label, target, count, None, figure, 0, 0, _cpu(cpu0, cpu1, t1 - t0))
                result.host = self.host.between(host0, self.host.sample(), t1 - t0)
                results.append(result)
            runner.stop()
        finally:
            runner.quit()
        return results

    def _windows(self, env: Environment, label: str, plan: Windows) -> stability.Figure:
        def take() -> stability.Window:
            started = time.monotonic()
            self._watch(env, label, plan.window_s, "window")
            # a slow target's window stays open until it holds enough requests for the figure's percentiles
            deadline = started + max(plan.window_s, plan.max_window_s)
            while len(self.collector.latencies) < plan.min_requests and (left := deadline - time.monotonic()) > 0:
                gevent.sleep(min(0.05, left))
            return self.collector.take(time.monotonic() - started)

        return stability.measure(
            take, min_windows=plan.min_windows, max_windows=plan.max_windows, tolerance=plan.tolerance
        )

    def _watch(self, env: Environment, label: str, seconds: float, phase: str) -> None:
        """Sleep ``seconds`` while printing progress about once a second."""
        start = time.monotonic()
        deadline = start + seconds
        while (left := deadline - time.monotonic()) > 0:
            gevent.sleep(min(1.0, left))
        total = env.stats.total
        print(
            f"  {label:<30} {phase:<18} {seconds:4.1f}s  req {total.num_requests:>6}  fail {total.num_failures:>4}",
            file=sys.stderr,
            flush=True,
        )

    def _result(
        self, env: Environment, label: str, target: str, users: int, rate: float | None, figure: stability.Figure,
        warm_requests: int, warm_failures: int, cpu: float,
    ) -> RunResult:  # fmt: skip
        stats_path = self.out / "csv" / f"{label}_stats.csv"
        failures_path = self.out / "csv" / f"{label}_failures.csv"
        writer = StatsCSV(env, PERCENTILES_TO_REPORT)
        with stats_path.open("w", newline="") as f:
            writer.requests_csv(csv.writer(f))
        with failures_path.open("w", newline="") as f:
            writer.failures_csv(csv.writer(f))
        samples_path = self.out / "samples" / f"{label}.json"
        samples_path.write_text(json.dumps([round(x, 3) for x in figure.latencies_ms]))
        return RunResult(
            label=label,
            target=target,
            users=users,
            rate=rate,
            figure=figure.to_json(),
            warmup_requests=warm_requests,
            warmup_failures=warm_failures,
            loadgen_cpu_percent=round(cpu, 1),
            csv=str(stats_path.relative_to(self.out)),
            failures_csv=str(failures_path.relative_to(self.out)),
            samples=str(samples_path.relative_to(self.out)),
            sent_requests=env.stats.total.num_requests,
        )


def _cpu(cpu0: Any, cpu1: Any, seconds: float) -> float:
    """This process's CPU over ``seconds``, in percent of one core."""
    used = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    return used / seconds * 100 if seconds > 0 else 0.0
