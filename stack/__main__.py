"""``python -m stack up|down|status|restart SERVICE``: the native stack (see :mod:`stack.native`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stack.native import SERVICES, StackPaths, down, restart, up


def main(argv: list[str] | None = None) -> int:
    """``up``, ``down``, ``status`` or ``restart SERVICE``."""
    parser = argparse.ArgumentParser(prog="python -m stack", description="Start and stop duoserve's native stack.")
    parser.add_argument("command", choices=["up", "down", "status", "restart"])
    parser.add_argument("service", nargs="?", choices=SERVICES, help="for restart")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("STACK_READY_TIMEOUT_S", "300")))
    parser.add_argument(
        "--tuned",
        type=Path,
        default=Path(os.environ["STACK_TUNED"]) if os.environ.get("STACK_TUNED") else None,
        help="a tuned file from `python -m loadtests tune` (default: $STACK_TUNED); up only",
    )
    args = parser.parse_args(argv)
    paths = StackPaths.from_env()
    if args.command == "up":
        return up(paths, args.timeout, args.tuned)
    if args.command == "down":
        return down(paths)
    if args.command == "restart":
        if not args.service:
            parser.error("restart needs a service")
        return restart(paths, args.service, args.timeout)
    if not paths.info.exists():
        print("stack: not up")
        return 1
    print(paths.info.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
