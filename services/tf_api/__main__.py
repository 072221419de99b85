"""``python -m services.tf_api serve``: TF Serving's binary when installed, else the compatible server.

Environment (all optional; see :class:`services.tf_api.settings.Settings`):
TF_API_HOST (127.0.0.1), TF_API_REST_PORT (8501), TF_API_GRPC_PORT (8500),
TF_API_ARTIFACTS (artifacts/), TF_API_MODELS_CONFIG (<artifacts>/tf/models.config,
written by the build), TF_API_BATCHING_CONFIG, TF_API_MONITORING_CONFIG (the files in
services/tf_api/), TF_API_ENABLE_BATCHING (true), TF_API_MAX_BODY_BYTES (128 MiB),
TF_API_SERVER (auto|binary|compat), TF_API_LOG_DIR (logs/tf_api/), TF_API_INFERENCE_THREADS
(2, batching off only), TF_API_LOG_LEVEL (warning), TF_API_ACCESS_LOG (false),
TF_API_LOG_MAX_BYTES (10 MiB) and TF_API_LOG_BACKUPS (3).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
from logging.handlers import RotatingFileHandler

from contract.manifest import read_manifest
from services.tf_api.config import ConfigError, check_batch_limits, load_batching
from services.tf_api.settings import Settings, SettingsError, load_settings


def _logging(settings: Settings) -> None:
    """compat.log rolls over at ``TF_API_LOG_MAX_BYTES``; the console (the stack's launcher.log) gets the same lines."""
    rolling = RotatingFileHandler(
        settings.log_dir / "compat.log", maxBytes=settings.log_max_bytes, backupCount=settings.log_backups
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(), rolling]
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers
    )


def serve(settings: Settings) -> int:
    """Start whichever server the settings and PATH allow; returns the exit code."""
    from services.tf_api.binary import BINARY, confinement, run
    from services.tf_api.netns import ConfineError

    settings.log_dir.mkdir(parents=True, exist_ok=True)
    if settings.enable_batching:
        try:  # both servers refuse a request larger than max_batch_size: it must take what the manifest allows
            manifest = read_manifest(settings.artifacts, missing_ok=True)
            check_batch_limits(
                load_batching(settings.batching_config),
                settings.batching_config,
                {name: entry.max_batch for name, entry in manifest.models.items()},
            )
        except ConfigError as exc:
            print(f"tf_api: {exc}", file=sys.stderr)
            return 2
    binary = shutil.which(BINARY)
    if settings.server == "binary" and binary is None:
        print(f"tf_api: TF_API_SERVER=binary but {BINARY} is not on PATH", file=sys.stderr)
        return 2
    reason = "TF_API_SERVER=compat" if binary is not None else "not on PATH"
    if binary is not None and settings.server != "compat":
        try:
            unshare = confinement(settings)
        except ConfineError as exc:
            why = (
                f"{BINARY} listens on every interface and cannot be kept on loopback here: {exc}; "
                "set TF_API_BINARY_ANY_INTERFACE=true to run it anyway (behind a firewall)"
            )
            if settings.server == "binary":
                print(f"tf_api: {why}", file=sys.stderr)
                return 2
            print(f"tf_api: {why}; starting the compatible server instead", flush=True)
            reason = "cannot be kept on loopback"
        else:
            return run(settings, binary, unshare)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _logging(settings)
    print(
        f"tf_api: {BINARY} not used ({reason}); starting the compatible server",
        flush=True,
    )
    from services.tf_api.compat.server import serve as serve_compat

    code = asyncio.run(serve_compat(settings))
    if code != 0:
        print(f"tf_api: the compatible server failed to start; see {settings.log_dir / 'compat.log'}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m services.tf_api", description=__doc__)
    parser.add_argument("command", choices=["serve"])
    parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tf_api: bad setting: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
