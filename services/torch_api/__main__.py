"""``python -m services.torch_api serve``: TorchServe in the foreground (see ``launcher``)."""

from __future__ import annotations

import argparse
import sys

from contract.settings import SettingsError, load
from services.torch_api.launcher import serve
from services.torch_api.settings import TorchApiSettings


def main(argv: list[str] | None = None) -> int:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(prog="python -m services.torch_api")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start TorchServe with duoserve's config and model store (foreground)")
    parser.parse_args(argv)
    try:
        settings = load(TorchApiSettings)
    except SettingsError as exc:
        print(f"torch_api: bad setting: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
