"""Container healthcheck: TorchServe's ``/ping`` with the inference key (ping needs it too).

Standard library only: it runs inside the official TorchServe image.
Usage: ``python healthcheck.py [KEY_FILE] [URL]``; exit 0 when TorchServe says Healthy.
"""

from __future__ import annotations

import json
import sys
import urllib.request


def main(argv: list[str]) -> int:
    """Probe once; print why on failure."""
    key_file = argv[1] if len(argv) > 1 else "/home/model-server/keys/key_file.json"
    url = argv[2] if len(argv) > 2 else "http://127.0.0.1:8080/ping"
    try:
        with open(key_file) as f:
            key = json.load(f)["inference"]["key"]
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            status = json.loads(response.read()).get("status")
    except (OSError, ValueError, KeyError) as exc:
        print(f"unhealthy: {exc}")
        return 1
    if status != "Healthy":
        print(f"unhealthy: {status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
