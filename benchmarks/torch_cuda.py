"""The served PyTorch artifacts on a GPU against their CPU answers: ``python -m benchmarks.torch_cuda``.

TorchServe serves the same TorchScript / ``torch.export`` file on a GPU host that
duoserve checked on the CPU, so the parity the manifest records holds there only if the
GPU computes in full float32. ``torch.jit.trace`` stores cuDNN's ``allow_tf32`` in every
convolution, which is why every export traces with TF32 off and the handler turns TF32
off on CUDA. This checks it where a GPU exists, in two steps:

* ``prepare --out DIR [--root ROOT ...] [--skip MODEL ...]`` (here, on the CPU): copies each
  model's TorchScript or ``torch.export`` artifact, draws its inputs from the contract
  (:func:`contract.tensors.sample_inputs`) at batch 1 and a larger batch, and stores the
  CPU's answers beside them;
* ``check --dir DIR`` (on the GPU host, which needs only torch and numpy): runs every file
  on ``cuda`` twice, with TF32 off as the handler sets it and with PyTorch's defaults
  (cuDNN TF32 on), and prints the max abs difference from the CPU and the p50 of 50 calls.

Not a test: the repo's tests never need a GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TOLERANCE = 1e-4


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _flatten(v)]
    return [value]


def _load(torch: Any, path: Path, device: str) -> Any:
    # the handler's loading (services.torch_api.handler), repeated so the GPU host needs no pydantic
    if path.suffix == ".pt2":
        program = torch.export.load(str(path))
        if device != "cpu":
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, device)
        return program.module()
    return torch.jit.load(str(path), map_location=device).eval()


def _call(torch: Any, module: Any, arrays: list[np.ndarray], device: str) -> list[np.ndarray]:
    with torch.inference_mode():
        out = module(*[torch.from_numpy(a).to(device) for a in arrays])
    return [t.detach().float().cpu().numpy() for t in _flatten(out)]


def prepare(out: Path, roots: list[Path], skip: set[str]) -> int:
    """The artifacts, their inputs and the CPU's answers into ``out`` (with ``index.json``)."""
    import torch

    from contract.manifest import read_manifest
    from contract.tensors import sample_inputs

    out.mkdir(parents=True, exist_ok=True)
    index = []
    for root in roots:
        manifest = read_manifest(root)
        for name, entry in manifest.models.items():
            kind = next((k for k in ("torch_export", "torchscript") if k in entry.artifacts), None)
            if kind is None or name in skip:
                continue
            path = manifest.verify(root, name, kind)
            shutil.copy(path, out / path.name)
            module = _load(torch, path, "cpu")
            cases = {}
            for rows in sorted({1, min(8, entry.max_batch)}):
                inputs = sample_inputs(entry, rows, seed=7)
                arrays = [inputs[n] for n in entry.input_names]
                expected = _call(torch, module, arrays, "cpu")
                np.savez(out / f"{name}-{rows}.npz", *arrays, *expected)
                cases[rows] = {"file": f"{name}-{rows}.npz", "inputs": len(arrays), "outputs": len(expected)}
            index.append({"model": name, "artifact": path.name, "kind": kind, "cases": cases})
            print(f"{name}: {path.name} ({kind}), batches {sorted(cases)}")
    (out / "index.json").write_text(json.dumps({"torch": torch.__version__, "models": index}, indent=2))
    return 0


def check(directory: Path, calls: int = 50) -> int:
    """Every artifact on cuda, TF32 off and PyTorch's defaults, against the CPU's answers."""
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    index = json.loads((directory / "index.json").read_text())
    print(f"prepared with torch {index['torch']} (CPU); checked with torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")  # fmt: skip
    print("\n| model | artifact | batch | TF32 | max abs diff from the CPU | within 1e-4 | p50 ms (50 calls) |")
    print("| --- | --- | ---: | --- | ---: | --- | ---: |")
    results = []
    worst = 0.0
    failed = False
    for item in index["models"]:
        try:
            module = _load(torch, directory / item["artifact"], "cuda")
        except Exception as exc:  # noqa: BLE001 -- an artifact this torch cannot load is a finding
            why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            print(f"| {item['model']} | {item['artifact']} | - | - | does not load: {why} | - | - |")
            results.append({"model": item["model"], "error": str(exc)[:500]})
            continue
        for rows, case in sorted(item["cases"].items(), key=lambda kv: int(kv[0])):
            data = np.load(directory / case["file"])
            arrays = [data[f"arr_{i}"] for i in range(case["inputs"])]
            expected = [data[f"arr_{case['inputs'] + i}"] for i in range(case["outputs"])]
            for tf32 in (False, True):
                torch.backends.cudnn.allow_tf32 = tf32
                torch.backends.cuda.matmul.allow_tf32 = tf32
                try:
                    got = _call(torch, module, arrays, "cuda")
                except Exception as exc:  # noqa: BLE001 -- a model that cannot run on cuda is a finding
                    why = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:160]
                    print(f"| {item['model']} | {item['artifact']} | {rows} | - | fails on cuda: {why} | no | - |")
                    results.append({"model": item["model"], "batch": int(rows), "error": why})
                    failed = True
                    break
                diff = max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected, strict=True))
                times = []
                for _ in range(calls):
                    torch.cuda.synchronize()
                    start = time.perf_counter()
                    _call(torch, module, arrays, "cuda")
                    times.append((time.perf_counter() - start) * 1e3)
                p50 = statistics.median(times)
                if not tf32:
                    worst = max(worst, diff)
                mode = "on (PyTorch's default)" if tf32 else "off (the handler)"
                print(f"| {item['model']} | {item['artifact']} | {rows} | {mode} | {diff:.1e} "
                      f"| {'yes' if diff <= TOLERANCE else 'no'} | {p50:.3f} |")  # fmt: skip
                results.append({"model": item["model"], "batch": int(rows), "tf32": tf32, "max_abs_diff": diff,
                                "p50_ms": p50})  # fmt: skip
    print(f"\nworst difference with TF32 off: {worst:.1e} ({'within' if worst <= TOLERANCE else 'over'} 1e-4)")
    (directory / "results.json").write_text(json.dumps(results, indent=2))
    return 0 if worst <= TOLERANCE and not failed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torch_cuda", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="here: the artifacts, inputs and CPU answers")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--root", type=Path, action="append", help="artifacts root (repeatable; default artifacts/)")
    p.add_argument("--skip", nargs="*", default=[], help="models to leave out (to fit a transfer)")
    c = sub.add_parser("check", help="on the GPU host")
    c.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.step == "prepare":
        return prepare(args.out, args.root or [Path("artifacts")], set(args.skip))
    return check(args.dir)


if __name__ == "__main__":
    sys.exit(main())
