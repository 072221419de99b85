"""``python -m loadtests tune --model M``: each stack's serving settings searched against the SLO, in a budget.

model_analyzer's idea on a 2-core budget. A *round* starts a whole stack (its own free
ports, run and log directories) with one candidate per stack written as a tuned file
(:class:`contract.tuning.TunedConfig`), measures each stack's capacity under the SLO with a
short open-loop search (:mod:`loadtests.slo`, windows of :mod:`loadtests.stability`), and
stops the stack. Round 0 is the shipped configuration; later rounds take the candidates
below in order, one per stack, until the next round would overrun the budget (default 10
minutes). The searched settings:

- TorchServe (TorchScript): batchSize × maxBatchDelay × workers;
- TorchServe (ONNX Runtime): the same and ONNX Runtime's intra-op threads;
- Triton (TorchScript; ONNX Runtime): the instance count × the dynamic batcher's
  ``max_queue_delay_microseconds`` × its preferred batch size;
- TF server: the batch it runs (``max_execution_batch_size``) × ``batch_timeout_micros`` ×
  ``num_batch_threads``.

It writes ``reports/tune-<time>/tuned.json`` (start a stack with it: ``make up
TUNED=...``, ``python -m stack up --tuned ...``) and ``tune.md``: every trial, and the
stacks compared default against default and tuned against tuned. A capacity is the best
passing offered rate of one search, not a confirmed figure: confirm the winner with
``make run TUNED=...``.
"""

# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from contract.tuning import TfBatchingSettings, TorchServeSettings, TritonSettings, TunedConfig
from loadtests import report, slo
from loadtests.engine import SATURATED_CPU_PERCENT, Engine, Windows
from loadtests.profile import Slo
from loadtests.runner import open_loop_probe
from services.process import free_port

REPO = Path(__file__).resolve().parents[1]
PORTS = (
    "TORCH_API_INFERENCE_PORT", "TORCH_API_MANAGEMENT_PORT", "TORCH_API_METRICS_PORT",
    "TORCH_API_GRPC_INFERENCE_PORT", "TORCH_API_GRPC_MANAGEMENT_PORT", "TF_API_REST_PORT", "TF_API_GRPC_PORT",
    "GATEWAY_PORT", "TRITON_API_HTTP_PORT", "TRITON_API_GRPC_PORT", "TRITON_API_METRICS_PORT",
)  # fmt: skip
#: The stacks tuned, by the load-test target that measures each.
STACKS = {
    "torch": "TorchServe, TorchScript", "torch_ort": "TorchServe, ONNX Runtime", "triton": "Triton, TorchScript",
    "triton_ort": "Triton, ONNX Runtime", "tf": "TF server",
}  # fmt: skip
#: Candidates after the shipped configuration, in the order tried: (batchSize, maxBatchDelay ms, workers[, threads]).
TORCH_CANDIDATES = [(8, 1, 2), (32, 2, 2), (16, 1, 1), (4, 1, 2), (16, 5, 2), (32, 5, 1)]
ORT_CANDIDATES = [(16, 1, 1, 2), (8, 1, 2, 1), (32, 2, 1, 2), (4, 1, 2, 1), (16, 5, 2, 1), (32, 5, 2, 1)]
#: (max_execution_batch_size, batch_timeout_micros, num_batch_threads)
TF_CANDIDATES = [(8, 1000, 2), (32, 2000, 2), (16, 1000, 1), (4, 500, 2), (16, 5000, 2), (32, 5000, 4)]
#: Triton: (instances, max_queue_delay_microseconds, preferred_batch_size)
TRITON_CANDIDATES = [(1, 1000, 16), (2, 500, 8), (2, 2000, 32), (1, 0, 1), (2, 5000, 16), (1, 5000, 32)]


def candidates(model: str, round_no: int) -> dict[str, Any]:
    """Round ``round_no``'s candidate per stack (round 0: the shipped configuration, None everywhere)."""
    if round_no == 0:
        return dict.fromkeys(STACKS)
    i = (round_no - 1) % len(TORCH_CANDIDATES)
    b, d, w = TORCH_CANDIDATES[i]
    ob, od, ow, ot = ORT_CANDIDATES[i]
    tb, tt, tn = TF_CANDIDATES[i]
    instances, delay, preferred = TRITON_CANDIDATES[i]
    triton = TritonSettings(instances=instances, max_queue_delay_microseconds=delay, preferred_batch_size=preferred)
    return {
        "triton": triton,
        "triton_ort": triton,
        "torch": TorchServeSettings(batchSize=b, maxBatchDelay=d, workers=w),
        "torch_ort": TorchServeSettings(batchSize=ob, maxBatchDelay=od, workers=ow, intraOpThreads=ot),
        "tf": TfBatchingSettings(max_execution_batch_size=tb, batch_timeout_micros=tt, num_batch_threads=tn),
    }


def tuned_file(model: str, batch: int, slo_ms: float, chosen: dict[str, Any], evidence: dict[str, Any]) -> TunedConfig:
    """The tuned file for the chosen settings (a stack whose choice is the shipped one is left out)."""
    torchserve = {}
    if chosen.get("torch") is not None:
        torchserve[model] = chosen["torch"]
    if chosen.get("torch_ort") is not None:
        torchserve[f"{model}_ort"] = chosen["torch_ort"]
    triton = {}
    if chosen.get("triton") is not None:
        triton[model] = chosen["triton"]
    if chosen.get("triton_ort") is not None:
        triton[f"{model}_ort"] = chosen["triton_ort"]
    return TunedConfig(
        model=model,
        batch=batch,
        slo_ms=slo_ms,
        torchserve=torchserve,
        triton=triton,
        tf=chosen.get("tf"),
        evidence=evidence,
    )


def best(trials: list[dict[str, Any]], stack: str) -> dict[str, Any] | None:
    """The trial with the highest capacity for ``stack`` (the earlier one on a tie; the shipped one first)."""
    mine = [t for t in trials if t["stack"] == stack and t["capacity"] is not None]
    return max(mine, key=lambda t: t["capacity"]) if mine else None


def _describe(stack: str, settings: Any) -> str:
    if settings is None:
        return "shipped"
    return ", ".join(f"{k} {v}" for k, v in settings.model_dump(exclude_none=True).items())


class Tuner:
    """Runs the rounds; see the module docstring."""

    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.args = args
        self.out = out
        self.trials: list[dict[str, Any]] = []
        self.rng = random.Random(args.seed)

    def _stack_env(self, round_no: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({name: str(free_port()) for name in PORTS})
        env.update(
            PYTHONPATH=str(REPO),
            STACK_RUN_DIR=str(self.out / f"round{round_no}" / "run"),
            STACK_LOG_DIR=str(self.out / f"round{round_no}" / "logs"),
            TORCH_API_MODELS=f"{self.args.model},{self.args.model}_ort",
            TRITON_API_MODELS=f"{self.args.model},{self.args.model}_ort",
            TORCH_API_WORKER_PORT=str(self.rng.randrange(300, 640) * 100),
        )
        return env

    def round(self, round_no: int, chosen: dict[str, Any]) -> None:
        tuned = tuned_file(self.args.model, self.args.batch, self.args.slo_ms, chosen, {})
        path = self.out / f"round{round_no}" / "trial.json"
        tuned.write(path)
        env = self._stack_env(round_no)
        stack = [sys.executable, "-m", "stack"]
        up = subprocess.run([*stack, "up", "--tuned", str(path)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=400)  # fmt: skip
        try:
            if up.returncode != 0:
                print(
                    f"tune: round {round_no} did not start:\n{up.stdout[-1500:]}\n{up.stderr[-1500:]}", file=sys.stderr
                )
                for target in STACKS:
                    trial = {"round": round_no, "stack": target, "settings": _describe(target, chosen[target])}
                    self.trials.append({**trial, "raw": chosen[target], "capacity": None, "note": "did not start"})
                return
            self._measure(round_no, chosen, Path(env["STACK_RUN_DIR"]) / "stack.json")
        finally:
            subprocess.run([*stack, "down"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    def _measure(self, round_no: int, chosen: dict[str, Any], stack_json: Path) -> None:
        args = ["--stack", str(stack_json), "--model", self.args.model, "--batch", str(self.args.batch),
                "--seed", str(self.args.seed)]  # fmt: skip
        out = self.out / f"round{round_no}"
        engine = Engine(args, out, seed=self.args.seed)
        s = Slo(slo_ms=self.args.slo_ms, warmup_s=0.3, max_users=256)
        windows = Windows(0.75, 3, 3)
        criteria = slo.Criteria(self.args.slo_ms, saturated_cpu_percent=SATURATED_CPU_PERCENT)
        order = list(STACKS)
        self.rng.shuffle(order)
        for target in order:
            # a fresh server is cold (TF traces each new batch size once): warm it at fixed concurrency first
            engine.run(f"r{round_no}_{target}_warm", target, 8, 1.0, Windows(0.5, 3, 3))
            previous = best(self.trials, target)
            start = max(10.0, previous["capacity"] / 2) if previous else 25.0
            plan = slo.Plan(start_rate=start, rel_tol=0.15, max_probes=9)
            result = slo.TargetResult(target, self.args.slo_ms)

            def measure(t: str, rate: float, label: str, r: int) -> slo.Probe:
                print(f"tune: round {round_no} {t} {label}: {rate:.0f} req/s", file=sys.stderr, flush=True)
                return open_loop_probe(engine, t, rate, f"r{round_no}_{t}_{label}", s, windows, r)[1]

            slo.search(result, measure, criteria, plan)
            self.trials.append(
                {
                    "round": round_no,
                    "stack": target,
                    "settings": _describe(target, chosen[target]),
                    "raw": chosen[target],
                    "capacity": result.best_rate,
                    "ceiling": result.ceiling,
                    "generator_bound": result.generator_bound,
                    "probes": len(result.probes),
                }
            )

    def run(self) -> TunedConfig:
        started = time.monotonic()
        durations: list[float] = []
        round_no = 0
        while round_no <= len(TORCH_CANDIDATES):
            elapsed = time.monotonic() - started
            expected = max(durations) if durations else 0.0
            if round_no > 0 and elapsed + expected > self.args.budget:
                print(f"tune: budget reached after {round_no} rounds ({elapsed:.0f} s)", file=sys.stderr)
                break
            t0 = time.monotonic()
            self.round(round_no, candidates(self.args.model, round_no))
            durations.append(time.monotonic() - t0)
            round_no += 1
        chosen: dict[str, Any] = {}
        evidence: dict[str, Any] = {"budget_s": self.args.budget, "rounds": round_no, "stacks": {}}
        for target in STACKS:
            top = best(self.trials, target)
            default = next((t for t in self.trials if t["stack"] == target and t["round"] == 0), None)
            chosen[target] = top["raw"] if top else None
            evidence["stacks"][target] = {
                "default_capacity": default["capacity"] if default else None,
                "tuned_capacity": top["capacity"] if top else None,
                "tuned_settings": top["settings"] if top else None,
            }
        return tuned_file(self.args.model, self.args.batch, self.args.slo_ms, chosen, evidence)


def main(args: argparse.Namespace) -> int:
    """The command; writes ``tune-<time>/`` under ``args.out`` and prints where the tuned file is."""
    if args.budget <= 0:
        print("loadtests: --budget must be positive", file=sys.stderr)
        return 2
    from contract.artifacts import default_root
    from contract.manifest import read_manifest

    try:
        read_manifest(default_root()).model(args.model)
    except KeyError as exc:
        print(f"loadtests: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    out = args.out / f"tune-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    tuner = Tuner(args, out)
    tuned = tuner.run()
    tuned.write(out / "tuned.json")
    trials = [{k: v for k, v in t.items() if k != "raw"} for t in tuner.trials]
    (out / "tune.json").write_text(json.dumps({"trials": trials, "evidence": tuned.evidence}, indent=2) + "\n")
    markdown = (
        report.templates()
        .get_template("tune.md")
        .render(a=args, trials=trials, evidence=tuned.evidence, stacks=STACKS, tuned=out / "tuned.json")
    )
    (out / "tune.md").write_text(markdown)
    print(markdown)
    print(f"tuned file: {out / 'tuned.json'}  (make up TUNED={out / 'tuned.json'})")
    return 0
