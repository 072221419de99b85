"""Benchmark TorchServe: TorchServe's default configuration against the tuned one we ship.

``python -m services.torch_api.bench [--models mlp,digits] [--duration 8] [--repeats 3]``

Both variants serve the same handler and TorchScript files, one after the other in the
same run: *default* has TorchServe's stock settings (workers = cores, no batching,
default netty threads, the worker decodes JSON); *tuned* is ``config.properties`` and
``model-config.yaml`` as shipped. Load comes from wrk (``services.common.wrk``), one
instance per request, at 1, 16 and 64 connections. Prints a Markdown table of
min/median/max over the repeats and writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from services.common import wrk
from services.common.artifacts import artifact_path, default_root, load_manifest, sha256_path, write_json
from services.common.procs import free_port, terminate
from services.common.specs import get_spec
from services.torch_api.export import export_mar
from services.torch_api.launcher import READY_LINE, read_keys
from services.torch_api.settings import TorchApiSettings

HERE = Path(__file__).resolve().parent
#: Lines of config.properties that are our tuning, removed for the default variant.
TUNING_KEYS = ("number_of_netty_threads", "netty_client_threads", "decode_input_request")


def _prepare_root(work: Path, variant: str, models: list[str]) -> tuple[Path, Path]:
    """An artifacts root holding only this variant's archives, and its config template."""
    source = default_root()
    manifest = load_manifest(source)
    root = work / variant
    entries: dict[str, Any] = {}
    for model in models:
        export_mar(source, model, ort=False, config={} if variant == "default" else None, out_root=root)
        path = artifact_path(root, model, "mar")
        entry = json.loads(json.dumps(manifest["models"][model]))
        entry["artifacts"] = {"mar": {"path": "model-store/" + path.name, "sha256": sha256_path(path)}}
        entries[model] = entry
    write_json(root / "manifest.json", {"format": 1, "models": entries})
    template = HERE / "config.properties"
    if variant == "default":
        lines = [line for line in template.read_text().splitlines() if line.split("=", 1)[0].strip() not in TUNING_KEYS]
        template = work / "default.properties"
        template.write_text("\n".join(lines) + "\n")
    return root, template


def _start(
    work: Path, variant: str, root: Path, template: Path, models: list[str]
) -> tuple[subprocess.Popen[bytes], TorchApiSettings]:
    env = dict(os.environ)
    ports = {k: free_port() for k in ("INFERENCE", "MANAGEMENT", "METRICS", "GRPC_INFERENCE", "GRPC_MANAGEMENT")}
    env.update({f"TORCH_API_{k}_PORT": str(v) for k, v in ports.items()})
    env.update(
        TORCH_API_ARTIFACTS=str(root),
        TORCH_API_MODELS=",".join(models),
        TORCH_API_RUN_DIR=str(work / f"{variant}-run"),
        TORCH_API_LOG_DIR=str(work / f"{variant}-logs"),
        TORCH_API_CONFIG_TEMPLATE=str(template),
        TORCH_API_WORKER_PORT=str(31000 + (100 if variant == "tuned" else 0)),
    )
    log = (work / f"{variant}-launcher.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "services.torch_api", "serve"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 300
    launcher_log = work / f"{variant}-launcher.log"
    while READY_LINE not in launcher_log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"TorchServe ({variant}) did not start:\n{launcher_log.read_text()[-3000:]}")
        time.sleep(0.5)
    settings = TorchApiSettings.model_validate(
        {"inference_port": ports["INFERENCE"], "run_dir": work / f"{variant}-run", "artifacts": root}
    )
    return proc, settings


def _measure(
    variant: str, settings: TorchApiSettings, models: list[str], connections: list[int], duration: float, repeats: int
) -> list[dict[str, Any]]:
    import numpy as np

    headers = {"Authorization": f"Bearer {read_keys(settings.run_dir)['inference']}"}
    results: list[dict[str, Any]] = []
    for model in models:
        spec = get_spec(model)
        low, high = spec.value_range
        x = np.random.default_rng(0).uniform(low, high, size=(1, *spec.input_shape)).astype(np.float32)
        body = json.dumps({"instances": x.tolist()}).encode()
        url = f"http://127.0.0.1:{settings.inference_port}/predictions/{model}"
        wrk.run(url, body, connections=4, duration_s=2, headers=headers)  # warm-up, not recorded
        for conns in connections:
            for repeat in range(repeats):
                threads = 2 if conns > 1 else 1
                result = wrk.run(url, body, connections=conns, duration_s=duration, headers=headers, threads=threads)
                results.append({"variant": variant, "model": model, "repeat": repeat, **result.to_json()})
                print(
                    f"{variant:7} {model:7} c={conns:<3} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:7.2f} ms  non-2xx {result.non_2xx}",
                    flush=True,
                )
    return results


def _summary(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,digits")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("reports/bench-torch_api.json"))
    args = parser.parse_args(argv)
    models = args.models.split(",")
    connections = [int(c) for c in args.connections.split(",")]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="duoserve-bench-") as tmp:
        work = Path(tmp)
        for variant in ("default", "tuned"):
            root, template = _prepare_root(work, variant, models)
            proc, settings = _start(work, variant, root, template, models)
            try:
                results += _measure(variant, settings, models, connections, args.duration, args.repeats)
            finally:
                terminate(proc, 60)
    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    write_json(args.out, {"environment": env, "results": results})
    print("\n| model | connections | variant | req/s min / median / max | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model in models:
        for conns in connections:
            for variant in ("default", "tuned"):
                rows = [
                    r for r in results if r["model"] == model and r["connections"] == conns and r["variant"] == variant
                ]
                print(
                    f"| {model} | {conns} | {variant} | {_summary([r['rps'] for r in rows])} | "
                    f"{_summary([r['p50_ms'] for r in rows])} | {_summary([r['p99_ms'] for r in rows])} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
