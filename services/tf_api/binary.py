"""Run the real ``tensorflow_model_server`` with the project's config files, when it is installed.

The binary reads the same models.config (its /models/ base paths rewritten to this
machine's artifacts, see :func:`services.tf_api.config.write_native_config`),
batching.config and monitoring.config, on the configured ports. SIGTERM/SIGINT are
passed on to it.

TF Serving has no flag that chooses an interface (its server.cc binds gRPC to
``0.0.0.0:<port>`` and REST to the port on every address). Natively it is therefore
confined, like every other native server, to loopback: it runs in a network namespace of
its own and the launcher forwards ``TF_API_HOST`` (127.0.0.1) at the REST and gRPC ports to
it (:mod:`services.tf_api.netns`). Where user namespaces are not allowed the binary is not
started (``TF_API_SERVER=auto`` then falls back to the compatible server, saying why) unless
``TF_API_BINARY_ANY_INTERFACE=true`` accepts that it listens on every interface. In Docker
only the compose network reaches it (its ports are exposed, never published).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from services.process import Process
from services.tf_api.config import write_native_config
from services.tf_api.netns import check_unshare, serve_outside
from services.tf_api.settings import Settings

BINARY = "tensorflow_model_server"


def command(settings: Settings, binary: str, models_config: Path, grpc_socket: Path | None = None) -> list[str]:
    """The binary's command line for these settings (gRPC on ``grpc_socket`` instead of a TCP port when given)."""
    cmd = [
        binary,
        f"--port={0 if grpc_socket else settings.grpc_port}",
        f"--rest_api_port={settings.rest_port}",
        f"--model_config_file={models_config}",
        f"--monitoring_config_file={settings.monitoring_config}",
    ]
    if grpc_socket is not None:
        cmd.append(f"--grpc_socket_path={grpc_socket}")
    if settings.enable_batching:
        cmd += ["--enable_batching=true", f"--batching_parameters_file={settings.batching_config}"]
    return cmd


def confinement(settings: Settings) -> list[str] | None:
    """The ``unshare`` prefix that confines the binary, or None when it may run unconfined;
    :class:`services.tf_api.netns.ConfineError` when it may do neither."""
    if settings.binary_any_interface:
        return None
    return check_unshare()


def run(settings: Settings, binary: str, unshare: list[str] | None) -> int:
    """Start the binary, log to ``<log_dir>/tensorflow_model_server.log``, wait, return its exit code."""
    native = write_native_config(
        settings.models_config_path, settings.artifacts, settings.log_dir / "models.native.config"
    )
    log = settings.log_dir / "tensorflow_model_server.log"
    rotate = (settings.log_max_bytes, settings.log_backups)
    if unshare is None:
        proc = Process(BINARY, command(settings, binary, native), log, own_group=False, append=True, rotate=rotate)
        _forward_signals(proc)
        print(
            f"tf_api: started {BINARY} (pid {proc.pid}; its answers carry no X-TF-Server header); "
            f"REST :{settings.rest_port} gRPC :{settings.grpc_port} on ALL interfaces "
            f"(TF_API_BINARY_ANY_INTERFACE=true); log {proc.log}",
            flush=True,
        )
        return proc.popen.wait()
    sockets = Path(tempfile.mkdtemp(prefix="duoserve-tf-"))  # short: a Unix socket path has 107 bytes at most
    try:
        rest_sock, grpc_sock = sockets / "rest.sock", sockets / "grpc.sock"
        inside = [sys.executable, "-m", "services.tf_api.netns"]
        inside += ["--rest-port", str(settings.rest_port), "--rest-sock", str(rest_sock), "inside", "--"]
        cmd = [*unshare, *inside, *command(settings, binary, native, grpc_sock)]
        proc = Process(BINARY, cmd, log, own_group=False, append=True, rotate=rotate)
        return asyncio.run(_confined(settings, proc, rest_sock, grpc_sock))
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def _forward_signals(proc: Process) -> None:
    def forward(signum: int, frame: object) -> None:
        proc.signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)


async def _confined(settings: Settings, proc: Process, rest_sock: Path, grpc_sock: Path) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, proc.signal, sig)
    try:
        servers = await serve_outside(settings.host, settings.rest_port, settings.grpc_port, rest_sock, grpc_sock)
    except OSError as exc:
        print(f"tf_api: cannot listen on {settings.host}: {exc}", file=sys.stderr, flush=True)
        proc.stop()
        return 1
    print(
        f"tf_api: started {BINARY} (pid {proc.pid}; its answers carry no X-TF-Server header) in a network "
        f"namespace of its own; REST http://{settings.host}:{settings.rest_port} gRPC {settings.host}:"
        f"{settings.grpc_port} forwarded to it; log {proc.log}",
        flush=True,
    )
    code = await loop.run_in_executor(None, proc.popen.wait)
    for server in servers:
        server.close()  # type: ignore[attr-defined]
    return int(code)
