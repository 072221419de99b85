"""Keep TorchServe's inference key from expiring.

TorchServe 0.12 issues keys that expire after ``token_expiration_min`` (60 by default)
and only renews one when asked: ``GET /token?type=inference`` on the management API with
the never-expiring API key, which also rewrites ``key_file.json``. Clients (the gateway)
re-read the key file when TorchServe answers ``InvalidKeyException`` and retry once, so
renewing at half the lifetime means the key they hold is never expired for long.

Standard library only: the Docker image runs it beside TorchServe
(``python keyrefresh.py --key-file ... --management http://127.0.0.1:8081``), and the
native launcher calls :func:`refresh` from its foreground loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path


def refresh(management_url: str, key_file: Path, kind: str = "inference", timeout: float = 5.0) -> None:
    """Ask TorchServe for a new ``kind`` key (it rewrites ``key_file``); raises OSError on failure."""
    api_key = json.loads(key_file.read_text())["API"]["key"]
    request = urllib.request.Request(
        f"{management_url}/token?type={kind}", headers={"Authorization": f"Bearer {api_key}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status != 200:
            raise OSError(f"TorchServe answered {response.status} to a key renewal")


def main(argv: list[str] | None = None) -> int:
    """Renew the inference key every ``--every-min`` minutes until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--management", default="http://127.0.0.1:8081")
    parser.add_argument("--every-min", type=float, default=30.0)
    args = parser.parse_args(argv)
    while True:
        time.sleep(args.every_min * 60)
        try:
            refresh(args.management, args.key_file)
        except (OSError, ValueError, KeyError) as exc:
            print(f"keyrefresh: renewal failed: {exc}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
