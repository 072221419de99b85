"""Benchmark TorchServe's logging: TorchServe's own (as duoserve shipped it) against the production logging.

``python -m benchmarks.torchserve_logging [--model mlp] [--connections 16] [--duration 10] [--repeats 5]``

Two TorchServe instances run side by side with the same archives and ``config.properties``,
differing only in their logging (``TORCH_API_LOGGING``):

- *shipped*: TorchServe 0.12's built-in log4j2.xml (org.pytorch.serve at DEBUG to ts_log.log
  and, through the root logger, to the console, which the launcher copied unrotated into
  stdout.log; every worker line as MODEL_LOG; one access-log line per request);
- *production*: ``services/torch_api/log4j2.xml`` (WARN, no access log, no per-batch worker
  line, every file rolling at 10 MB; the console copy rolled by ``services/logsink.py``).

wrk drives each in turn, the order alternating every repeat (interleaved, so a change in the
host's load hits both); each run records req/s, p50, p99 and the bytes the instance's log
directory grew by, per request. Prints a Markdown table (min / median / max over the repeats)
and writes the raw figures and the environment to ``--out``. Run it under
``flock /work/measure.lock`` on a shared host.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from contract.artifacts import default_root, write_json
from contract.keys import KEY_FILE, read_key
from loadtests import payload, wrk
from services.process import Process, free_port
from services.torch_api.launcher import READY_LINE

VARIANTS = {"shipped": "torchserve-default", "production": "production"}


def _log_sizes(log_dir: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in log_dir.rglob("*") if p.is_file()}


def _grown(before: dict[str, int], after: dict[str, int]) -> int | None:
    """Bytes the logs grew by; None when a file rolled over meanwhile (TorchServe's own config gzips at 100 MB)."""
    if any(after.get(name, 0) < size for name, size in before.items()):
        return None
    return sum(after.values()) - sum(before.values())


def _start(work: Path, variant: str, model: str, worker_port: int) -> tuple[Process, int, Path, Path]:
    ports = {k: free_port() for k in ("INFERENCE", "MANAGEMENT", "METRICS", "GRPC_INFERENCE", "GRPC_MANAGEMENT")}
    run_dir, log_dir = work / f"{variant}-run", work / f"{variant}-logs"
    env = dict(os.environ)
    env.update({f"TORCH_API_{k}_PORT": str(v) for k, v in ports.items()})
    env.update(
        TORCH_API_ARTIFACTS=str(default_root()),
        TORCH_API_MODELS=model,
        TORCH_API_RUN_DIR=str(run_dir),
        TORCH_API_LOG_DIR=str(log_dir),
        TORCH_API_WORKER_PORT=str(worker_port),
        TORCH_API_LOGGING=VARIANTS[variant],
        TORCH_API_ACCESS_LOG="false",
    )
    proc = Process.python(f"TorchServe ({variant})", ["-m", "services.torch_api", "serve"], work / f"{variant}.log",
                          env=env)  # fmt: skip
    proc.wait_ready(line=READY_LINE, timeout_s=300)
    return proc, ports["INFERENCE"], run_dir, log_dir


def _environment() -> dict[str, Any]:
    def version(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return "not installed"
        return (done.stdout + done.stderr).strip().splitlines()[0]

    import ts  # TorchServe's version, from its wheel

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "torchserve": Path(ts.__file__).with_name("version.txt").read_text().strip(),
        "java": version(["java", "-version"]),
        "wrk": version(["wrk", "-v"]),
    }


def _bytes(value: float | None) -> str:
    return "rolled over" if value is None else f"{value:7.1f}"


def _summary(values: list[float], digits: int = 1) -> str:
    return f"{min(values):,.{digits}f} / {statistics.median(values):,.{digits}f} / {max(values):,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-torchserve-logging.json"))
    parser.add_argument("--keep-logs", type=Path, help="copy both instances' logs here afterwards")
    args = parser.parse_args(argv)
    environment = _environment()
    body = payload.body(payload.load_model(args.model), 1, seed=0)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="duoserve-bench-logging-") as tmp:
        work = Path(tmp)
        started = {v: _start(work, v, args.model, 32000 + 100 * i) for i, v in enumerate(VARIANTS)}
        try:
            targets = {}
            for variant, (_, port, run_dir, log_dir) in started.items():
                headers = {"Authorization": f"Bearer {read_key(run_dir / KEY_FILE)}"}
                url = f"http://127.0.0.1:{port}/predictions/{args.model}"
                wrk.run(url, body, connections=4, duration_s=3, headers=headers)  # warm-up, not recorded
                targets[variant] = (url, headers, log_dir)
            for repeat in range(args.repeats):
                order = list(VARIANTS) if repeat % 2 == 0 else list(reversed(VARIANTS))
                for variant in order:
                    url, headers, log_dir = targets[variant]
                    time.sleep(1.0)  # let the previous run's asynchronous logging land
                    before = _log_sizes(log_dir)
                    result = wrk.run(url, body, connections=args.connections, duration_s=args.duration,
                                     headers=headers, threads=2)  # fmt: skip
                    time.sleep(1.0)
                    grown = _grown(before, _log_sizes(log_dir))
                    per_request = None if grown is None else grown / max(1, result.requests)
                    row = {
                        "variant": variant, "repeat": repeat, **result.to_json(), "log_bytes": grown,
                        "log_bytes_per_request": per_request, "load_average": os.getloadavg(),
                    }  # fmt: skip
                    results.append(row)
                    print(f"{variant:10} r{repeat} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                          f"p99 {result.p99_ms:7.2f} ms  log {_bytes(per_request)} B/request  "
                          f"non-2xx {result.non_2xx}", flush=True)  # fmt: skip
        finally:
            for proc, *_ in started.values():
                proc.stop()
            if args.keep_logs:
                for variant, (*_, log_dir) in started.items():
                    shutil.copytree(log_dir, args.keep_logs / variant, dirs_exist_ok=True)
    environment["load_average_at_end"] = os.getloadavg()
    command = "python -m benchmarks.torchserve_logging " + " ".join(argv if argv is not None else sys.argv[1:])
    write_json(args.out, {"command": command, "environment": environment, "results": results})
    print(f"\n{args.model}, {args.connections} connections, {args.duration:g} s × {args.repeats} interleaved repeats; "
          f"min / median / max")  # fmt: skip
    print("| logging | req/s | p50 ms | p99 ms | log bytes per request |")
    print("| --- | --- | --- | --- | --- |")
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        rps, p50 = _summary([r["rps"] for r in rows], 0), _summary([r["p50_ms"] for r in rows], 2)
        counted = [r["log_bytes_per_request"] for r in rows if r["log_bytes_per_request"] is not None]
        rolled = len(rows) - len(counted)
        logged = (_summary(counted) if counted else "-") + (f" ({rolled} runs rolled over)" if rolled else "")
        p99 = _summary([r["p99_ms"] for r in rows], 2)
        print(f"| {variant} | {rps} | {p50} | {p99} | {logged} |")
    shipped = [r["rps"] for r in results if r["variant"] == "shipped"]
    production = [r["rps"] for r in results if r["variant"] == "production"]
    ratios = [p / s for p, s in zip(production, shipped, strict=True) if s]
    print(f"\nproduction / shipped req/s per repeat: {_summary(ratios, 2)} (min / median / max)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
