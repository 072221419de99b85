"""``python -m services.torch_api serve``: TorchServe in the foreground (see ``launcher``)."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from services.torch_api.launcher import serve
from services.torch_api.settings import TorchApiSettings


def main(argv: list[str] | None = None) -> int:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(prog="python -m services.torch_api")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start TorchServe with duoserve's config and model store (foreground)")
    parser.parse_args(argv)
    try:
        settings = TorchApiSettings()
    except ValidationError as exc:
        print(f"torch_api: bad settings:\n{exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
