"""``python -m examples [add|build|list] [NAME...] [--root DIR] [--force]``.

- ``add`` (default): build each example, show where a converter refuses it, and add it with
  ``duoserve models add`` to the artifacts root (``artifacts/`` unless ``--root``), once per
  recipe;
- ``build``: only build the source files into ``examples/NAME/out/``;
- ``list``: the examples and what each shows;
- ``converters``: every torch example through both torch -> TF converters (onnx2tf, nobuco),
  into scratch roots: the measurement behind the choice in docs/models.md (JSON on stdout's last line);
- ``figures``: the examples' conversion times, artifact sizes and parity figures in ``--root``, as markdown;
- ``zoo``: the model zoo (:mod:`examples.zoo`): build each zoo model, add it to ``--root``
  (``artifacts/zoo/`` by default), serve it on the torch, torch_ort and tf backends through the
  gateway, check every answer against the source runtime, and write the coverage table into
  docs/models.md (``--no-docs``: not); a refusal is recorded and the zoo goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from contract.artifacts import default_root

from .runner import EXAMPLES, ExampleError, add, build, compare_converters, figures
from .zoo import ZOO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", choices=("add", "build", "list", "converters", "figures", "zoo"), default="add"
    )
    parser.add_argument("names", nargs="*", help=f"examples (default: all of {', '.join(EXAMPLES)}), or zoo models")
    parser.add_argument(
        "--root", type=Path, help="artifacts root (default: artifacts/; for zoo: artifacts/zoo/, a root of its own)"
    )
    parser.add_argument("--force", action="store_true", help="convert again even when up to date")
    parser.add_argument("--group", type=int, default=4, help="zoo: models served by one stack at a time (4)")
    parser.add_argument("--no-docs", action="store_true", help="zoo: do not write the table into docs/models.md")
    args = parser.parse_args(argv)
    if args.command == "zoo":
        return _zoo(args.names, args.root, force=args.force, group=args.group, docs=not args.no_docs)
    args.root = args.root or default_root()
    unknown = [n for n in args.names if n not in EXAMPLES]
    if unknown:
        print(f"examples: no example {unknown[0]!r} (examples: {', '.join(EXAMPLES)})", file=sys.stderr)
        return 2
    chosen = [EXAMPLES[n] for n in args.names or EXAMPLES]
    if args.command == "figures":
        print(figures(args.root))
        return 0
    if args.command == "converters":
        with tempfile.TemporaryDirectory() as work:
            try:
                rows = compare_converters(chosen, Path(work))
            except ExampleError as exc:
                print(f"examples: {exc}", file=sys.stderr)
                return 1
        print(json.dumps(rows))
        return 0
    try:
        for example in chosen:
            if args.command == "list":
                print(f"{example.name}: {example.summary}")
            elif args.command == "build":
                log = args.root.parent / "logs" / "examples" / f"{example.name}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                print(f"{example.name}: built in {build(example, log):.1f} s into {example.out}")
            else:
                add(example, args.root, force=args.force)
    except ExampleError as exc:
        print(f"examples: {exc}", file=sys.stderr)
        return 1
    return 0


def _zoo(names: list[str], root: Path | None, *, force: bool, group: int, docs: bool) -> int:
    from .zoo import run

    unknown = [n for n in names if n not in ZOO]
    if unknown:
        print(f"examples: no zoo model {unknown[0]!r} (the zoo: {', '.join(ZOO)})", file=sys.stderr)
        return 2
    root = root or run.default_zoo_root()
    chosen = names or list(ZOO)
    run.run(chosen, root, force=force, group=max(1, group))
    print(run.table(root, chosen))
    if docs:
        run.write_table(root)
        print(f"zoo: the table is in {run.DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
