"""``python -m gateway``: serve on ``GATEWAY_HOST:GATEWAY_PORT`` with uvicorn (uvloop, httptools).

Request headers must arrive within ``GATEWAY_HEADER_TIMEOUT_S`` (408 otherwise; see :mod:`.server`).
The Open Inference Protocol's gRPC service listens on ``GATEWAY_GRPC_PORT`` in the same
event loop, started and stopped by the app's lifespan.

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
from .server import header_timeout_protocol


def main() -> int:
    try:
        settings = load_settings()
        app = create_app(settings)
    except SettingsError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=header_timeout_protocol(settings.header_timeout_s),  # httptools, plus a header timeout
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    # uvicorn re-raises the signal that stopped it once shutdown is complete; a no-op
    # handler underneath turns a graceful SIGTERM stop into exit status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
