"""``python -m loadtests run``: the comparison, the step load, the SLO search, a wrk
cross-check, then the report. Runs against a stack that is already up (``make up``).

Order: a preflight request to every target; the gateway's stats reset; the fixed-
concurrency comparison (closed loop; every target in every repeat, in an order shuffled
per repeat with the run's seed, so drift on a shared 2-core host spreads over all targets
alike), each run measured in windows until stable (:mod:`loadtests.stability`) with the
servers' metrics read before and after (:mod:`loadtests.servermetrics`, for the breakdown);
the gateway's ``/v1/stats`` snapshot, taken before anything else reaches the gateway so its
counts can be reconciled with what Locust sent; the step load (if the profile has one);
the SLO search (:mod:`loadtests.slo`: open-loop Poisson probes, its own bracket, at least
three shuffled confirmation rounds); wrk against one target with the same body;
``results.json``; the report.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import arrivals, envinfo, payload, provenance, report, servermetrics, slo, stability, wrk
from loadtests.engine import SATURATED_CPU_PERCENT, Engine, RunResult, Windows
from loadtests.profile import Profile, Slo
from loadtests.targets import TARGETS, Endpoints, get_target, headers, path, torch_key


def _http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            if response.headers.get("Content-Type", "").startswith("application/octet-stream"):
                return response.status, raw  # binary tensors (the Open Inference Protocol's): not JSON
            return response.status, json.loads(raw or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300].decode(errors="replace")


def _headers(endpoints: Endpoints, name: str) -> dict[str, str]:
    target = get_target(name)
    return headers(endpoints, target, torch_key(endpoints.torch_key_file) if target.kind == "torch" else None)


def _gateway_headers(endpoints: Endpoints) -> dict[str, str]:
    return {"X-API-Key": endpoints.gateway_api_key} if endpoints.gateway_api_key else {}


def preflight(endpoints: Endpoints, profile: Profile, bodies: Callable[[payload.Encoding], payload.Encoded]) -> None:
    """One request per target (its body in its encoding); raise with the answer if any is not a 200."""
    for name in dict.fromkeys(profile.all_targets()):
        target = get_target(name)
        url = endpoints.host(target) + path(target, profile.model)
        body, extra = bodies(target.encoding)
        status, answer = _http("POST", url, body, {**_headers(endpoints, name), **extra})
        if status != 200:
            raise RuntimeError(f"preflight: {name} ({url}) answered {status}: {answer}")


class Run:
    """One invocation: a profile against one stack, written under ``out``."""

    def __init__(self, profile: Profile, endpoints: Endpoints, stack_path: Path, out: Path) -> None:
        self.profile = profile
        self.endpoints = endpoints
        self.out = out
        # the running stack's manifest (its artifacts root is in stack.json), through the contract
        root = endpoints.stack.artifacts if endpoints.stack else None
        self.model = payload.load_model(profile.model, root)
        self.sample = payload.load_sample(self.model, root)
        args = ["--stack", str(stack_path), "--model", profile.model, "--batch", str(profile.batch),
                "--seed", str(profile.seed), "--max-fail-ratio", str(profile.max_fail_ratio),
                "--gateway-url", endpoints.gateway, "--torch-url", endpoints.torch,
                "--tf-url", endpoints.tf_rest]  # fmt: skip
        if endpoints.gateway_api_key:
            args += ["--api-key", endpoints.gateway_api_key]
        if endpoints.torch_key_file:
            args += ["--torch-key-file", endpoints.torch_key_file]
        pids = dict(endpoints.stack.pids) if endpoints.stack else {}
        self.engine = Engine(args, out, seed=profile.seed, stack_pids=pids)
        #: the shuffled orders of the comparison's repeats (the SLO search shuffles with its own)
        self.rng = random.Random(profile.seed)
        stack = endpoints.stack
        self.results: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": profile.model,
            "batch": profile.batch,
            "seed": profile.seed,
            "profile": profile.to_json(),
            "stack": stack.model_dump(mode="json") if stack else {},
            "config_hash": stack.config_hash if stack and stack.config_hash else "unknown",
            "serving": stack.serving if stack else {},
            "targets": {n: TARGETS[n].description for n in profile.targets},
            # what the model is and, for a brought one, where it came from and how far its artifacts agree
            "model_entry": self.model.model_dump(
                mode="json", include={"origin", "source", "inputs", "outputs", "max_batch", "parity"}, exclude_none=True
            ),
        }

    def execute(self) -> dict[str, Any]:
        self.results["environment"] = envinfo.describe(self.endpoints.stack)
        # which converter made each target's artifact from what, and its in-process cost against the source
        self.results["provenance"] = provenance.describe(self.model, self.results["environment"]["versions"])
        preflight(self.endpoints, self.profile, self._body)
        self.comparison()
        if self.profile.step and self.profile.step.targets:
            self.step()
        if self.profile.slo and self.profile.slo.targets:
            self.slo_search()
        if self.profile.wrk and self.profile.wrk.target:
            self.wrk_check()
        self.results["loadgen"] = loadgen_summary(self.results)
        self.results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2) + "\n")
        return self.results

    def windows(
        self, window_s: float | None = None, max_windows: int | None = None, max_window_s: float | None = None
    ) -> Windows:
        w = self.profile.windows
        return Windows(window_s or w.window_s, w.min_windows, max(w.min_windows, max_windows or w.max_windows),
                       w.tolerance, max(window_s or w.window_s, max_window_s or w.max_window_s))  # fmt: skip

    def comparison(self) -> None:
        c = self.profile.comparison
        gateway = any(TARGETS[t].via_gateway for t in self.profile.targets)
        if gateway:
            _http("POST", f"{self.endpoints.gateway}/v1/stats/reset", b"", _gateway_headers(self.endpoints))
        runs: list[RunResult] = []
        orders: list[list[str]] = []
        for repeat in range(1, c.repeats + 1):
            order = list(self.profile.targets)
            self.rng.shuffle(order)
            orders.append(order)
            print(f"comparison: repeat {repeat}/{c.repeats}, {c.users} users, order {order}", file=sys.stderr,
                  flush=True)  # fmt: skip
            for name in order:
                snapshot = server_snapshot(self.endpoints, self.profile.model, name)
                runs.append(self.engine.run(f"cmp_{name}_r{repeat}", name, c.users, c.warmup_s, self.windows(),
                                            snapshot=snapshot))  # fmt: skip
        self.results["comparison"] = {**c.__dict__, "orders": orders, "runs": [r.to_json() for r in runs]}
        if gateway:
            status, snapshot = _http(
                "GET", f"{self.endpoints.gateway}/v1/stats", None, _gateway_headers(self.endpoints)
            )
            (self.out / "gateway_stats.json").write_text(json.dumps(snapshot, indent=2) + "\n")
            self.results["gateway_stats"] = {"file": "gateway_stats.json", "status": status, "sent": self._sent(runs)}

    def _body(self, encoding: payload.Encoding) -> payload.Encoded:
        """The first body of the run in ``encoding``, with its headers."""
        return payload.encoded(self.model, self.profile.batch, self.profile.seed, sample=self.sample, encoding=encoding)

    def _sent(self, runs: list[RunResult]) -> dict[str, int]:
        """Backend calls the gateway made for Locust's requests (warm-up included: the gateway saw it)."""
        sent: dict[str, int] = {}
        compare = self.endpoints.compare_backends(self.profile.model)
        for run in runs:
            target = TARGETS[run.target]
            if not target.via_gateway:
                continue
            n = run.sent_requests + run.warmup_requests
            for backend in compare if target.kind == "compare" else [target.backend]:
                sent[backend] = sent.get(backend, 0) + n
        return sent

    def step(self) -> None:
        s = self.profile.step
        assert s is not None
        runs: list[RunResult] = []
        for name in s.targets:
            print(f"step load: {name}, users {s.users}", file=sys.stderr, flush=True)
            runs += self.engine.steps(f"step_{name}", name, s.users, s.settle_s, self.windows())
        self.results["step"] = {**s.__dict__, "runs": [r.to_json() for r in runs]}

    def slo_search(self) -> None:
        s = self.profile.slo
        assert s is not None
        criteria = slo.Criteria(s.slo_ms, self.profile.max_fail_ratio, saturated_cpu_percent=SATURATED_CPU_PERCENT)
        plan = slo.Plan(s.start_rate, s.growth, s.rel_tol, s.max_probes, s.confirmations, s.confirm_attempts,
                        search_budget_s=s.search_budget_s)  # fmt: skip
        runs: list[dict[str, Any]] = []
        windows = self.windows(s.window_s, s.max_windows, s.max_window_s)

        def measure(target: str, rate: float, label: str, round_no: int) -> slo.Probe:
            print(f"slo: {target} round {round_no} {label}: {rate:.1f} req/s offered", file=sys.stderr, flush=True)
            run, found = open_loop_probe(self.engine, target, rate, f"slo_{target}_{label}", s, windows, round_no)
            runs.append(run.to_json())
            return found

        # one request at a time needs only a p50 (the search's start, and whether the bound can be met at all)
        alone = Windows(s.window_s, 3, 3, windows.tolerance, s.window_s,
                        -(-stability.MIN_SAMPLES["p50"] // stability.WINDOW_COUNT))  # fmt: skip

        def unloaded(target: str) -> slo.Probe:
            print(f"slo: {target}: one request at a time (unloaded latency)", file=sys.stderr, flush=True)
            run, found = closed_loop_probe(self.engine, target, 1, f"slo_{target}_unloaded", s.warmup_s, alone)
            runs.append(run.to_json())
            return found

        found, orders = slo.run_all(list(s.targets), measure, criteria, plan, self.profile.seed, unloaded)
        self.results["slo"] = {
            **s.__dict__,
            "seed": self.profile.seed,
            "rule": criteria.rule(),
            "orders": orders,
            "results": {t: r.to_json() for t, r in found.items()},
            "runs": runs,
        }

    def wrk_check(self) -> None:
        w = self.profile.wrk
        assert w is not None
        assert w.target is not None
        target = get_target(w.target)
        url = self.endpoints.host(target) + path(target, self.profile.model)
        body, extra = self._body(target.encoding)
        users = self.profile.comparison.users
        print(f"wrk cross-check: {w.target}, {users} connections, {w.duration_s:g} s", file=sys.stderr, flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        try:
            result = wrk.run(
                url,
                body,
                connections=users,
                duration_s=w.duration_s,
                headers={**_headers(self.endpoints, w.target), **extra},
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            cpu = round(used / (time.monotonic() - started) * 100, 1)
            self.results["wrk"] = {
                "target": w.target,
                "url": url,
                "result": result.to_json(),
                "loadgen_cpu_percent": cpu,
            }
        except (RuntimeError, OSError, ValueError, AttributeError) as exc:
            self.results["wrk"] = {"target": w.target, "url": url, "error": str(exc)}


def server_snapshot(endpoints: Endpoints, model: str, name: str) -> Any:
    """A callable reading the metrics of the server behind target ``name`` (None for /compare)."""
    target = TARGETS[name]
    stack = endpoints.stack
    if target.backend in ("torch", "torch_ort") and stack is not None:
        archive = f"{model}_ort" if target.backend == "torch_ort" else model
        return lambda: servermetrics.torchserve(stack.torch_metrics, archive)
    if target.backend in ("triton", "triton_ort") and stack is not None and stack.triton_metrics is not None:
        metrics, name = stack.triton_metrics, f"{model}_ort" if target.backend == "triton_ort" else model
        return lambda: servermetrics.triton(metrics, name)
    if target.backend == "tf":
        return lambda: servermetrics.tf_server(endpoints.tf_rest, model)
    return None


def open_loop_probe(
    engine: Engine, target: str, rate: float, label: str, s: Slo, windows: Windows, round_no: int = 0
) -> tuple[RunResult, slo.Probe]:
    """One open-loop probe: Poisson arrivals at ``rate`` from enough users, measured in windows."""
    users = arrivals.users_for(rate, s.slo_ms / 1000, maximum=s.max_users)
    started = time.monotonic()
    run = engine.run(label, target, users, s.warmup_s, windows, rate=rate)
    return run, _probe(run, rate, label, round_no, time.monotonic() - started)


def closed_loop_probe(
    engine: Engine, target: str, users: int, label: str, warmup_s: float, windows: Windows
) -> tuple[RunResult, slo.Probe]:
    """``users`` closed-loop users (one: the unloaded latency), as a probe at the rate they achieved."""
    started = time.monotonic()
    run = engine.run(label, target, users, warmup_s, windows)
    return run, _probe(run, run.rps, label, 0, time.monotonic() - started)


def _probe(run: RunResult, rate: float, label: str, round_no: int, elapsed_s: float) -> slo.Probe:
    figure = run.figure
    short = figure.get("short") or {}
    return slo.Probe(
        rate=rate,
        achieved_rps=run.rps,
        p99_ms=run.p99_ms,
        fail_ratio=run.fail_ratio,
        requests=run.requests,
        duration_s=float(figure["seconds"]),
        p50_ms=figure["p50_ms"],
        stable=bool(figure["stable"]),
        loadgen_cpu_percent=run.loadgen_cpu_percent,
        label=label,
        round=round_no,
        window_p50s=tuple(w["p50_ms"] for w in figure["per_window"][-3:] if w["p50_ms"] is not None),
        elapsed_s=round(elapsed_s, 2),
        p99_of=short.get("p99"),
        p50_of=short.get("p50"),
        spread=max(
            (x for x in (figure.get("rps_spread"), figure.get("latency_spread")) if x is not None), default=None
        ),
    )


def loadgen_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The load generator's headroom in every phase: its CPU share, and achieved against offered (open loop)."""
    phases: dict[str, Any] = {}
    for phase in ("comparison", "step", "slo"):
        runs = (results.get(phase) or {}).get("runs", [])
        if not runs:
            continue
        cpus = [r["loadgen_cpu_percent"] for r in runs]
        ratios = [r["achieved_ratio"] for r in runs if r.get("achieved_ratio") is not None]
        other = [r["host"]["other_percent"] for r in runs if (r.get("host") or {}).get("other_percent") is not None]
        phases[phase] = {
            "runs": len(runs),
            "max_cpu_percent": max(cpus),
            "saturated_runs": sum(c > SATURATED_CPU_PERCENT for c in cpus),
            "min_achieved_ratio": min(ratios) if ratios else None,
            "loop": "open" if ratios else "closed",
            # CPU used by processes that are neither the stack nor the load generator (a shared host)
            "other_cpu_median": statistics.median(other) if other else None,
            "other_cpu_max": max(other) if other else None,
        }
    wrk_cpu = (results.get("wrk") or {}).get("loadgen_cpu_percent")
    if wrk_cpu is not None:
        phases["wrk"] = {"runs": 1, "max_cpu_percent": wrk_cpu, "saturated_runs": 0, "min_achieved_ratio": None,
                         "loop": "closed"}  # fmt: skip
    peak = max((p["max_cpu_percent"] for name, p in phases.items() if name != "wrk"), default=0.0)
    return {
        "max_cpu_percent": peak,
        "threshold_percent": SATURATED_CPU_PERCENT,
        "saturated": any(p["saturated_runs"] for p in phases.values()),
        "phases": phases,
    }


def run(profile: Profile, stack_path: Path, reports: Path, overrides: dict[str, str | None]) -> int:
    """Run ``profile``, write ``reports/<timestamp>/``, print the summary; 1 if a comparison run failed its gate."""
    endpoints = Endpoints.from_stack_json(stack_path).with_overrides(
        overrides.get("gateway"),
        overrides.get("torch"),
        overrides.get("tf"),
        overrides.get("key_file"),
        overrides.get("api_key") or os.environ.get("LOADTEST_API_KEY"),
    )
    dropped = profile.served_by(endpoints.compare_backends(profile.model))
    if dropped:
        print(f"{profile.model} is not served by every backend (duoserve models list says why): "
              f"leaving out {', '.join(dropped)}", file=sys.stderr)  # fmt: skip
    out = reports / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=False)
    started = time.monotonic()
    results = Run(profile, endpoints, stack_path, out).execute()
    built = report.build(out)
    print(f"\n{built.summary_markdown}\nload test took {time.monotonic() - started:.0f} s")
    if results["loadgen"]["saturated"]:
        print(f"WARNING: the load generator used up to {results['loadgen']['max_cpu_percent']:.0f} % of a core: "
              "the figures it marks are bounded by the client, not the servers", file=sys.stderr)  # fmt: skip
    print(f"report: {out / 'report.html'}  ({out / 'report.md'})")
    return 1 if built.gate_failures else 0
