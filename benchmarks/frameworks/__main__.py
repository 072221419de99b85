"""The frameworks themselves, in process: ``python -m benchmarks.frameworks [--quick] [--device cpu|cuda] [--out DIR]``.

Measures what the serving comparison cannot see under its server overheads: training
speed of the article's programs (SimpleNN, the 784→128→10 classifier, the digits CNN to
an accuracy, the DynamicRNN) as a PyTorch loop and as Keras ``fit`` from the same
initial weights on the same batches, and in-process inference of every model in the
manifest through PyTorch eager, TorchScript, ``torch.compile``, ONNX Runtime, Keras
eager, ``tf.function``, XLA and the SavedModel signature. One worker process per
framework (torch and TensorFlow never share one); this process combines their results,
checks every runtime's outputs against the reference within 1e-4, judges the article's
claims and writes ``DIR/frameworks-<time>/``: ``frameworks.json``, ``report.md``,
``report.html`` and ``plots/``. ``--quick`` takes under 5 minutes on a 2-core machine.
Exit status 1 when a worker failed or a runtime disagreed with its reference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.frameworks import claims, parity, report
from benchmarks.frameworks.plan import FRAMEWORKS, RUNTIMES, TRAINING_MODELS, Plan, default_batches, quick_plan
from contract.artifacts import default_root
from contract.manifest import read_manifest
from loadtests import envinfo
from services.process import Process, log_tail

#: A worker that runs longer than this is stopped (its log tail is printed).
WORKER_TIMEOUT_S = 3600


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.frameworks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, repeats and batch sizes (< 5 min)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: cuda if a GPU")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="folder for frameworks-<time>/")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every framework")
    parser.add_argument("--artifacts", type=Path, default=default_root())
    parser.add_argument("--models", help="comma list of manifest models for inference (default: all)")
    parser.add_argument("--batches", help="comma list of batch sizes (default: 1,8,64,256; resnet 1,8,32)")
    parser.add_argument("--runtimes", help=f"comma list of runtimes (default: all: {','.join(RUNTIMES)})")
    parser.add_argument("--training", help=f"comma list of training programs, or none ({','.join(TRAINING_MODELS)})")
    parser.add_argument("--frameworks", help=f"comma list of workers to run ({','.join(FRAMEWORKS)})")
    parser.add_argument("--repeats", type=int, help="training repeats and inference windows")
    parser.add_argument("--window-s", type=float, help="seconds per timed inference window")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [t for t in text.split(",") if t and t != "none"]


def make_plan(args: argparse.Namespace) -> Plan:
    """The plan the command line asks for (``--quick`` first, then the explicit choices over it)."""
    device = args.device
    if device == "auto":
        device = "cuda" if envinfo.gpus() else "cpu"
    plan = Plan(device=device, threads=args.threads, seed=args.seed, artifacts=str(args.artifacts))
    if args.quick:
        quick_plan(plan)
    manifest = read_manifest(args.artifacts, missing_ok=True)
    models = _split(args.models) or [m for m in manifest.names if not (args.quick and m == "resnet")]
    batches = [int(b) for b in _split(args.batches) or []]
    plan.batches = {m: batches or default_batches(m, args.quick) for m in models}
    if args.runtimes:
        unknown = [r for r in _split(args.runtimes) or [] if r not in RUNTIMES]
        if unknown:
            raise SystemExit(f"unknown runtimes {unknown}; known: {', '.join(RUNTIMES)}")
        plan.runtimes = _split(args.runtimes) or []
    if args.training is not None:
        plan.training_models = [t for t in _split(args.training) or [] if t in TRAINING_MODELS]
    if args.repeats:
        plan.training.repeats = plan.timing.repeats = args.repeats
    if args.window_s:
        plan.timing.repeat_s = args.window_s
    return plan


def run_worker(framework: str, plan_path: Path, work: Path, logs: Path) -> dict[str, Any]:
    """One framework's worker as its own process; its log is echoed as it runs; its result JSON, or why none."""
    result_path = work / f"{framework}.json"
    log = logs / f"{framework}.log"
    args = [
        "-m",
        "benchmarks.frameworks.worker",
        "--framework",
        framework,
        "--plan",
        str(plan_path),
        "--work",
        str(work),
        "--result",
        str(result_path),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    printed = 0
    with Process.python(f"{framework} worker", args, log, env=env) as proc:
        while True:
            text = proc.log_text()
            for line in text[printed:].splitlines(keepends=True):
                if line.endswith("\n") and line.startswith(f"[{framework}]"):
                    print(line, end="", flush=True)
                printed += len(line) if line.endswith("\n") else 0
            if proc.returncode is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    if result_path.exists():
        return dict(json.loads(result_path.read_text()))
    reason = f"worker ended ({proc.exited() or 'timed out'}) without a result; log tail:\n{log_tail(log, 15)}"
    return {
        "framework": framework,
        "available": False,
        "reason": reason,
        "environment": {},
        "training": [],
        "inference": [],
        "skipped": [],
    }


def environment(plan: Plan, results: list[dict[str, Any]], load_before: tuple[float, ...]) -> dict[str, Any]:
    """Where and how the figures were measured: machine, versions, threads, device, load."""
    base = envinfo.describe()
    for key in ("tf_server", "torch_models"):
        base.pop(key, None)
    return {
        **base,
        "machine": platform.machine(),
        "device": plan.device,
        "threads": plan.threads,
        "seed": plan.seed,
        "quick": plan.quick,
        "command": "python -m benchmarks.frameworks " + " ".join(sys.argv[1:]),
        # threading variables a user may have set (OMP_WAIT_POLICY changes PyTorch's CPU figures on a busy host)
        "thread_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "KMP_", "MKL_", "TF_NUM_"))},
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "frameworks": {
            r["framework"]: {"available": r["available"], "reason": r["reason"], **r.get("environment", {})}
            for r in results
        },
        "plan": plan.to_json(),
    }


def combine(plan: Plan, results: list[dict[str, Any]], work: Path, load_before: tuple[float, ...]) -> dict[str, Any]:
    """The workers' results as one ``frameworks.json`` document, parity checked and claims judged."""
    combined: dict[str, Any] = {
        "format": 1,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "environment": environment(plan, results, load_before),
        "training": [t for r in results for t in r["training"]],
        "inference": [i for r in results for i in r["inference"]],
        "skipped": [s for r in results for s in r["skipped"]],
    }
    manifest = read_manifest(Path(plan.artifacts), missing_ok=True)
    combined["mismatches"] = parity.check(combined["inference"], work / "outputs", manifest)
    combined["loss_agreement"] = loss_agreement(combined["training"])
    combined["claims"] = claims.table(combined)
    return combined


def loss_agreement(training: list[dict[str, Any]]) -> dict[str, float]:
    """Per program, the largest per-epoch difference between the two frameworks' first-repeat losses."""
    found: dict[str, float] = {}
    for entry in training:
        if entry["framework"] != "pytorch":
            continue
        other = next((t for t in training if t["framework"] == "tensorflow" and t["model"] == entry["model"]), None)
        if other is not None:
            pairs = list(zip(entry["losses"], other["losses"], strict=False))
            found[entry["model"]] = max((abs(a - b) for a, b in pairs), default=0.0)
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the workers, combine, write the report; print where it is."""
    args = _parser().parse_args(argv)
    plan = make_plan(args)
    frameworks = _split(args.frameworks) or list(FRAMEWORKS)
    out = args.out / f"frameworks-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=False)
    load_before = os.getloadavg()
    print(
        f"device {plan.device}, {plan.threads} threads per framework, seed {plan.seed}, quick {plan.quick}; "
        f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}",
        flush=True,
    )
    print(f"inference: {json.dumps(plan.batches)}; training: {', '.join(plan.training_models) or 'none'}", flush=True)
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="frameworks-"))
    try:
        plan_path = work / "plan.json"
        plan_path.write_text(json.dumps(plan.to_json(), indent=2))
        results = [run_worker(fw, plan_path, work, out / "logs") for fw in frameworks]
        combined = combine(plan, results, work, load_before)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    combined["elapsed_s"] = time.monotonic() - began
    (out / "frameworks.json").write_text(json.dumps(combined, indent=2) + "\n")
    report.build(out, combined)
    print(report.summary_markdown(combined))
    for result in results:
        if not result["available"]:
            print(f"{result['framework']}: not measured: {result['reason']}", file=sys.stderr)
    for mismatch in combined["mismatches"]:
        print(f"parity: {mismatch}", file=sys.stderr)
    print(f"\nreport: {out / 'report.html'} ({combined['elapsed_s']:.0f} s)")
    crashed = [r for r in results if not r["available"] and "Traceback" in (r["reason"] or "")]
    return 1 if combined["mismatches"] or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
