"""Benchmark TorchServe: TorchServe's default configuration against the tuned one we ship.

``python -m benchmarks.torchserve [--models mlp,digits] [--duration 8] [--repeats 3]``

Both variants serve the same handler and TorchScript files, one after the other in the
same run: *default* has TorchServe's stock settings (workers = cores, no batching,
default netty threads, the worker decodes JSON); *tuned* is ``config.properties`` and
``model-config.yaml`` as shipped. Load comes from wrk (:mod:`loadtests.wrk`), one
instance per request, at 1, 16 and 64 connections. Prints a Markdown table of
min/median/max over the repeats and writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from contract.artifacts import artifact_path, default_root, sha256_path, write_json
from contract.keys import KEY_FILE, read_key
from contract.manifest import ArtifactRecord, Manifest, read_manifest
from loadtests import payload, wrk
from services.process import Process, free_port
from services.torch_api.export import export_mar
from services.torch_api.launcher import READY_LINE
from services.torch_api.settings import TorchApiSettings

HERE = Path(__file__).resolve().parents[1] / "services" / "torch_api"
#: Lines of config.properties that are our tuning, removed for the default variant.
TUNING_KEYS = ("number_of_netty_threads", "netty_client_threads", "decode_input_request")


def _prepare_root(work: Path, variant: str, models: list[str]) -> tuple[Path, Path]:
    """An artifacts root holding only this variant's archives, and its config template."""
    source = default_root()
    manifest = read_manifest(source)
    root = work / variant
    variant_manifest = Manifest()
    for model in models:
        entry = manifest.model(model)
        export_mar(source, entry, ort=False, config={} if variant == "default" else None, out_root=root)
        path = artifact_path(root, model, "mar")
        record = ArtifactRecord(path=path.relative_to(root).as_posix(), sha256=sha256_path(path), recipe=variant)
        variant_manifest.models[model] = entry.model_copy(update={"artifacts": {"mar": record}})
    variant_manifest.write(root / "manifest.json")
    template = HERE / "config.properties"
    if variant == "default":
        lines = [line for line in template.read_text().splitlines() if line.split("=", 1)[0].strip() not in TUNING_KEYS]
        template = work / "default.properties"
        template.write_text("\n".join(lines) + "\n")
    return root, template


def _start(work: Path, variant: str, root: Path, template: Path, models: list[str]) -> tuple[Process, TorchApiSettings]:
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
    proc = Process.python(
        f"TorchServe ({variant})", ["-m", "services.torch_api", "serve"], work / f"{variant}.log", env=env
    )
    proc.wait_ready(line=READY_LINE, timeout_s=300)
    settings = TorchApiSettings.model_validate(
        {"inference_port": ports["INFERENCE"], "run_dir": work / f"{variant}-run", "artifacts": root}
    )
    return proc, settings


def _measure(
    variant: str, settings: TorchApiSettings, models: list[str], connections: list[int], duration: float, repeats: int
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {read_key(settings.run_dir / KEY_FILE)}"}
    results: list[dict[str, Any]] = []
    for model in models:
        body = payload.body(payload.load_model(model), 1, seed=0)
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
            with proc:
                results += _measure(variant, settings, models, connections, args.duration, args.repeats)
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
