"""``python -m loadtests run``: the comparison, the step load, the SLO search, a wrk
cross-check, then the report. Runs against a stack that is already up (``make up``).

Order: a preflight request to every target; the gateway's stats reset; the fixed-
concurrency comparison (targets interleaved within each repeat, so drift on a shared
2-core host spreads over all targets alike); the gateway's ``/v1/stats`` snapshot, taken
before anything else reaches the gateway so its counts can be reconciled with what
Locust sent; the step load; the SLO search (seeded with the step load's best
throughput); wrk against one target with the same body; ``results.json``; the report.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import envinfo, payload, report, slo, wrk
from loadtests.engine import SATURATED_CPU_PERCENT, SPAWN_RATE, Engine, RunResult
from loadtests.profile import Profile
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
        self.model = payload.load_model(profile.model)
        self.sample = payload.load_sample(self.model)
        args = ["--stack", str(stack_path), "--model", profile.model, "--batch", str(profile.batch),
                "--seed", str(profile.seed), "--max-fail-ratio", str(profile.max_fail_ratio),
                "--gateway-url", endpoints.gateway, "--torch-url", endpoints.torch,
                "--tf-url", endpoints.tf_rest]  # fmt: skip
        if endpoints.gateway_api_key:
            args += ["--api-key", endpoints.gateway_api_key]
        if endpoints.torch_key_file:
            args += ["--torch-key-file", endpoints.torch_key_file]
        self.engine = Engine(args, out)
        self.results: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": profile.model,
            "batch": profile.batch,
            "seed": profile.seed,
            "profile": profile.to_json(),
            "stack": endpoints.stack.model_dump(mode="json") if endpoints.stack else {},
            "targets": {n: TARGETS[n].description for n in profile.targets},
            # what the model is and, for a brought one, where it came from and how far its artifacts agree
            "model_entry": self.model.model_dump(
                mode="json", include={"origin", "source", "inputs", "outputs", "max_batch", "parity"}, exclude_none=True
            ),
        }

    def execute(self) -> dict[str, Any]:
        self.results["environment"] = envinfo.describe(self.endpoints.stack)
        preflight(self.endpoints, self.profile, self._body)
        self.comparison()
        if self.profile.step and self.profile.step.targets:
            self.step()
        if self.profile.slo and self.profile.slo.targets:
            self.slo_search()
        if self.profile.wrk and self.profile.wrk.target:
            self.wrk_check()
        self.results["loadgen"] = self._loadgen()
        self.results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2) + "\n")
        return self.results

    def comparison(self) -> None:
        c = self.profile.comparison
        gateway = any(TARGETS[t].via_gateway for t in self.profile.targets)
        if gateway:
            _http("POST", f"{self.endpoints.gateway}/v1/stats/reset", b"", _gateway_headers(self.endpoints))
        runs: list[RunResult] = []
        for repeat in range(1, c.repeats + 1):
            print(f"comparison: repeat {repeat}/{c.repeats}, {c.users} users", file=sys.stderr, flush=True)
            for name in self.profile.targets:
                runs.append(self.engine.run(f"cmp_{name}_r{repeat}", name, c.users, c.duration_s, c.warmup_s))
        self.results["comparison"] = {**c.__dict__, "runs": [r.to_json() for r in runs]}
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
            n = run.requests + run.warmup_requests
            for backend in compare if target.kind == "compare" else [target.backend]:
                sent[backend] = sent.get(backend, 0) + n
        return sent

    def step(self) -> None:
        s = self.profile.step
        assert s is not None
        runs: list[RunResult] = []
        for name in s.targets:
            print(f"step load: {name}, users {s.users}", file=sys.stderr, flush=True)
            runs += self.engine.steps(f"step_{name}", name, s.users, s.step_s, s.settle_s)
        self.results["step"] = {**s.__dict__, "runs": [r.to_json() for r in runs]}

    def slo_search(self) -> None:
        s = self.profile.slo
        assert s is not None
        criteria = slo.Criteria(s.slo_ms, max_fail_ratio=self.profile.max_fail_ratio)
        found: dict[str, Any] = {}
        step_runs = self.results.get("step", {}).get("runs", [])
        for name in s.targets:
            best = max((r["rps"] for r in step_runs if r["target"] == name and r["failures"] == 0), default=None)
            upper = best * 1.1 if best else None
            start = best * 0.8 if best else 50.0
            print(f"slo search: {name}, p99 <= {s.slo_ms:g} ms, start {start:.0f} req/s", file=sys.stderr, flush=True)
            counter = iter(range(1, 100))

            def measure(rate: float, confirm: bool, name: str = name, counter: Any = counter) -> slo.Probe:
                users = max(2, min(s.max_users, math.ceil(rate * s.slo_ms / 1000 * 2) + 2))
                label = f"slo_{name}_{next(counter)}{'_confirm' if confirm else ''}"
                seconds = s.confirm_s if confirm else s.probe_s
                warmup = 0.3 + users / SPAWN_RATE  # every user started and past its first arrivals
                run = self.engine.run(label, name, users, seconds, warmup, pace=rate / users)
                return slo.Probe(rate, run.rps, run.p99_ms, run.fail_ratio, run.requests, confirm, run.duration_s)

            result = slo.search(
                measure, criteria, start_rate=start, upper=upper, max_probes=s.max_probes,
                confirm_attempts=s.confirm_attempts, rel_tol=s.rel_tol,
            )  # fmt: skip
            found[name] = result.to_json()
        self.results["slo"] = {**s.__dict__, "results": found}

    def wrk_check(self) -> None:
        w = self.profile.wrk
        assert w is not None
        assert w.target is not None
        target = get_target(w.target)
        url = self.endpoints.host(target) + path(target, self.profile.model)
        body, extra = self._body(target.encoding)
        users = self.profile.comparison.users
        print(f"wrk cross-check: {w.target}, {users} connections, {w.duration_s:g} s", file=sys.stderr, flush=True)
        try:
            result = wrk.run(
                url,
                body,
                connections=users,
                duration_s=w.duration_s,
                headers={**_headers(self.endpoints, w.target), **extra},
            )
            self.results["wrk"] = {"target": w.target, "url": url, "result": result.to_json()}
        except (RuntimeError, OSError, ValueError, AttributeError) as exc:
            self.results["wrk"] = {"target": w.target, "url": url, "error": str(exc)}

    def _loadgen(self) -> dict[str, Any]:
        cpus = [r["loadgen_cpu_percent"] for r in self.results["comparison"]["runs"]]
        cpus += [r["loadgen_cpu_percent"] for r in self.results.get("step", {}).get("runs", [])]
        peak = max(cpus, default=0.0)
        return {"max_cpu_percent": peak, "threshold_percent": SATURATED_CPU_PERCENT,
                "saturated": peak > SATURATED_CPU_PERCENT}  # fmt: skip


def run(profile: Profile, stack_path: Path, reports: Path, overrides: dict[str, str | None]) -> int:
    """Run ``profile``, write ``reports/<timestamp>/``, print the summary; 1 if a comparison run failed its gate."""
    endpoints = Endpoints.from_stack_json(stack_path).with_overrides(
        overrides.get("gateway"),
        overrides.get("torch"),
        overrides.get("tf"),
        overrides.get("key_file"),
        overrides.get("api_key") or os.environ.get("LOADTEST_API_KEY"),
    )
    out = reports / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=False)
    started = time.monotonic()
    results = Run(profile, endpoints, stack_path, out).execute()
    built = report.build(out)
    print(f"\n{built.summary_markdown}\nload test took {time.monotonic() - started:.0f} s")
    if results["loadgen"]["saturated"]:
        print(f"WARNING: the load generator used {results['loadgen']['max_cpu_percent']:.0f} % of a core: "
              "figures are bounded by the client, not the servers", file=sys.stderr)  # fmt: skip
    print(f"report: {out / 'report.html'}  ({out / 'report.md'})")
    return 1 if built.gate_failures else 0
