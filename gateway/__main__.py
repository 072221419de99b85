"""``python -m gateway``: serve on ``GATEWAY_HOST:GATEWAY_PORT`` with uvicorn (uvloop, httptools).

Request headers must arrive within ``GATEWAY_HEADER_TIMEOUT_S`` (408 otherwise; see :mod:`.server`).
The Open Inference Protocol's gRPC service listens on ``GATEWAY_GRPC_PORT`` in the same
event loop, started and stopped by the app's lifespan. With ``GATEWAY_WORKERS`` > 1 this
process supervises that many worker processes, each with its own ``SO_REUSEPORT`` socket
(:mod:`.workers`).

Runs in the foreground; SIGTERM or Ctrl-C stops it gracefully (in-flight requests finish
within 10 s, gRPC calls too, pools close); SIGTERM then exits 0. A bad setting exits with status 2 and a
message naming the variable.
"""

from __future__ import annotations

import logging
import signal
import sys

import uvicorn

from .app import create_app
from .config import SettingsError, load_settings
from .server import uvicorn_config
from .workers import PortTakenError, supervise


def main() -> int:
    try:
        settings = load_settings()
        app = create_app(settings)  # reads the manifest: a bad one fails here, before any worker starts
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.workers > 1:
        try:
            return supervise(settings)
        except PortTakenError as exc:
            print(f"gateway: {exc}", file=sys.stderr)
            return 1
    # uvicorn re-raises the signal that stopped it once shutdown is complete; a no-op
    # handler underneath turns a graceful SIGTERM stop into exit status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.Server(uvicorn_config(app, settings)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
