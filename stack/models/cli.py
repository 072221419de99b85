"""``duoserve models add|list|remove``: bring your own model (the ``duoserve`` console script, ``make setup``).

Exit status 0 on success; a refusal prints one line on stderr, exits 1 and changes
nothing; bad arguments exit 2; Ctrl-C exits 130 and leaves the previous state.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from contract.artifacts import ArtifactError, default_root
from contract.manifest import ModelEntry, read_manifest
from stack.builtins import BUILTINS

from .add import DEFAULT_MAX_BATCH, AddOptions, add
from .register import commit, locked
from .spec import RefusedError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="duoserve", description="duoserve: PyTorch or TensorFlow, for your model")
    sub = parser.add_subparsers(dest="area", required=True)
    models = sub.add_parser("models", help="the models duoserve serves")
    cmds = models.add_subparsers(dest="command", required=True)
    adding = cmds.add_parser(
        "add",
        help="bring a model in one framework; get the other's artifact, proven equal, served by both stacks",
        description="MODEL_FILE: an .onnx file, a TorchScript .pt, a torch.export .pt2, a SavedModel directory "
        "or a .keras file. Or --pair TORCH_FILE TF_MODEL when you have both. Trusted files only: loading a "
        "model runs its code (TorchScript programs, the pickled data of a .pt2, ONNX custom-op libraries, "
        "SavedModel file ops); Keras files are loaded in safe_mode. docs/models.md, 'Trusted files only'.",
    )
    adding.add_argument("name", help="the model's name (lower-case letters, digits, _)")
    adding.add_argument("source", nargs="?", type=Path, help="the model file or SavedModel directory")
    adding.add_argument(
        "--pair", nargs=2, type=Path, metavar=("TORCH_FILE", "TF_MODEL"), help="both frameworks' models"
    )
    adding.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME:SHAPE:DTYPE[:LOW:HIGH]",
        help="what the source does not declare; SHAPE includes the batch axis, -1 marks a dynamic axis "
        "(e.g. ids:-1,-1:int64:0:30521); LOW:HIGH is the range seeded inputs are drawn from",
    )
    adding.add_argument("--sample", type=Path, help="an .npz of real inputs (one array per input name) to check with")
    adding.add_argument("--tolerance", type=float, default=1e-4, help="absolute tolerance of the parity gate (1e-4)")
    adding.add_argument(
        "--rtol", type=float, help="relative tolerance added to the absolute one (|a-b| <= atol + rtol*|b|)"
    )
    adding.add_argument("--max-batch", type=int, help=f"most instances per request (default {DEFAULT_MAX_BATCH})")
    adding.add_argument(
        "--max-length", type=int, help="the largest size of a dynamic non-batch axis (e.g. sequence length)"
    )
    adding.add_argument("--replace", action="store_true", help="replace a model of this name")
    cmds.add_parser("list", help="every model: origin, inputs and outputs, parity, artifacts")
    removing = cmds.add_parser("remove", help="remove a model you added")
    removing.add_argument("name")
    for p in (adding, removing, cmds.choices["list"]):
        p.add_argument("--root", type=Path, default=default_root(), help="artifacts directory (default: artifacts/)")
    return parser


def _tensors(entry: ModelEntry, which: str) -> str:
    tensors = entry.inputs if which == "inputs" else entry.outputs
    return ", ".join(f"{t.name} {t.shape_text()} {t.dtype}" for t in tensors)


def _parity(entry: ModelEntry) -> str:
    if entry.origin == "builtin":
        return "built-in (held to 1e-4 by the test suite)"
    if not entry.parity:
        return "-"
    figures = ", ".join(f"{kind} {p.max_abs:.1e}" for kind, p in entry.parity.items())
    first = next(iter(entry.parity.values()))
    return f"{figures} (max abs difference from {first.against}; tolerance {first.tolerance_abs:g})"


def _latency(entry: ModelEntry) -> str:
    """The source's in-process time at the max batch and each artifact's as a multiple of it."""
    source = entry.latency["source"]
    ratios = ", ".join(
        f"{kind} {ratio:.2f}×" for kind in sorted(entry.latency) if kind != "source" and (ratio := entry.slowdown(kind))
    )
    return (
        f"source ({source.runtime}) {source.max_batch_ms:.3g} ms at batch {source.max_batch} "
        f"({source.batch_1_ms:.3g} ms at 1); {ratios or 'no artifact timed'} (time of the source's)"
    )


def _notes(entry: ModelEntry, indent: str) -> None:
    """What is missing and why, and the in-process times (``models list`` and the end of ``models add``)."""
    for kind, why in entry.missing.items():
        print(f"{indent}missing:   {kind} (so no torch_ort backend): {why}")
    if "source" in entry.latency:
        print(f"{indent}in process: {_latency(entry)}")


def list_models(root: Path) -> int:
    manifest = read_manifest(root)
    for name, entry in manifest.models.items():
        origin = (
            entry.origin
            if entry.source is None
            else f"{entry.origin} ({entry.source.format}: {', '.join(entry.source.files)})"
        )
        print(f"{name}\n  origin:    {origin}\n  inputs:    {_tensors(entry, 'inputs')}")
        print(f"  outputs:   {_tensors(entry, 'outputs')}\n  max batch: {entry.max_batch}")
        print(f"  parity:    {_parity(entry)}\n  artifacts: {', '.join(sorted(entry.artifacts))}")
        if entry.made_by:
            print(f"  made by:   {'; '.join(f'{kind}: {how}' for kind, how in sorted(entry.made_by.items()))}")
        _notes(entry, "  ")
        print(f"  served by: {', '.join(entry.backends)}\n")
    return 0


def remove(root: Path, name: str) -> int:
    if name in BUILTINS:
        raise RefusedError(f"{name!r} is a built-in model; only models you added can be removed")
    with locked(root):
        manifest = read_manifest(root)
        if name not in manifest.models:
            raise RefusedError(f"no model {name!r} to remove (models: {', '.join(manifest.models)})")
        commit(root, manifest, name, None, None)
    print(f"removed {name}")
    return 0


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """The ``duoserve`` command."""
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # a kill runs the same cleanup as Ctrl-C
    try:
        if args.command == "list":
            return list_models(args.root)
        if args.command == "remove":
            return remove(args.root, args.name)
        opts = AddOptions(
            name=args.name,
            source=args.source,
            pair=tuple(args.pair) if args.pair else None,
            inputs=args.input,
            sample=args.sample,
            atol=args.tolerance,
            rtol=args.rtol,
            max_batch=args.max_batch,
            max_length=args.max_length,
            replace=args.replace,
        )
        entry = add(opts, args.root, lambda line: print(line, flush=True))
        best = ", ".join(f"{kind} {p.max_abs:.1e}" for kind, p in entry.parity.items())
        print(f"added {entry.name}: {_tensors(entry, 'inputs')} -> {_tensors(entry, 'outputs')}; parity {best}")
        _notes(entry, "")
        print(f"serve it: make up ({', '.join(entry.backends)} backends); compare: make run MODEL={entry.name}")
        return 0
    except (RefusedError, ArtifactError) as exc:
        print(f"duoserve: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("duoserve: interrupted; nothing changed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
