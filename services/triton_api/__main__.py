"""``python -m services.triton_api serve|repository``: Triton in the foreground, or its model repository only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contract.manifest import read_manifest
from contract.settings import SettingsError, load
from services.triton_api import repository
from services.triton_api.launcher import serve
from services.triton_api.settings import TritonApiSettings


def main(argv: list[str] | None = None) -> int:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(prog="python -m services.triton_api")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="generate the model repository and run Triton (foreground)")
    write = sub.add_parser("repository", help="write the model repository only (the Docker image's)")
    write.add_argument("--out", type=Path, required=True)
    write.add_argument("--target", choices=["native", "image"], default="image")
    write.add_argument("--device", choices=["gpu", "cpu"], default=None, help="default: gpu for the image")
    args = parser.parse_args(argv)
    try:
        settings = load(TritonApiSettings)
    except SettingsError as exc:
        print(f"triton_api: bad setting: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve(settings)
    manifest = read_manifest(settings.artifacts)
    names = settings.model_names(list(repository.triton_models(manifest)))
    windows = repository.windows(names, settings.instances)
    gpu = None if args.device is None else args.device == "gpu"
    repository.write_repository(manifest, settings.artifacts, args.out, names, windows, args.target, gpu)
    print(f"triton_api: repository of {', '.join(names)} in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
