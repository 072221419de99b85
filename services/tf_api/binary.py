"""Run the real ``tensorflow_model_server`` with the project's config files, when it is installed.

The binary reads the same models.config (its /models/ base paths rewritten to this
machine's artifacts, see :func:`services.tf_api.config.write_native_config`),
batching.config and monitoring.config, on the configured ports. SIGTERM/SIGINT are
passed on to it.

It listens on every interface: TF Serving has no flag that chooses one (its server.cc
binds gRPC to ``0.0.0.0:<port>`` and the REST server to the port on all addresses), so
``TF_API_HOST`` does not apply to it. In Docker only the compose network reaches it (the
ports are exposed, never published); natively nothing but the host's firewall does, which
is why the launcher says so at start and the native stack defaults to the compatible
server unless the binary is on PATH.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from services.process import Process
from services.tf_api.config import write_native_config
from services.tf_api.settings import Settings

BINARY = "tensorflow_model_server"


def command(settings: Settings, binary: str, models_config: Path) -> list[str]:
    """The binary's command line for these settings."""
    cmd = [
        binary,
        f"--port={settings.grpc_port}",
        f"--rest_api_port={settings.rest_port}",
        f"--model_config_file={models_config}",
        f"--monitoring_config_file={settings.monitoring_config}",
    ]
    if settings.enable_batching:
        cmd += ["--enable_batching=true", f"--batching_parameters_file={settings.batching_config}"]
    return cmd


def run(settings: Settings, binary: str) -> int:
    """Start the binary, log to ``<log_dir>/tensorflow_model_server.log``, wait, return its exit code."""
    native = write_native_config(
        settings.models_config_path, settings.artifacts, settings.log_dir / "models.native.config"
    )
    proc = Process(
        BINARY,
        command(settings, binary, native),
        settings.log_dir / "tensorflow_model_server.log",
        own_group=False,
        append=True,
    )

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(
        f"tf_api: started {BINARY} (the TF Serving binary, pid {proc.pid}; its answers carry no X-TF-Server "
        f"header); REST :{settings.rest_port} gRPC :{settings.grpc_port} on ALL interfaces (the binary cannot "
        f"bind one; TF_API_HOST={settings.host} does not apply); log {proc.log}",
        flush=True,
    )
    return proc.popen.wait()
