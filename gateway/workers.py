"""Several gateway worker processes on one port (``GATEWAY_WORKERS``), each with its own ``SO_REUSEPORT`` socket.

The supervisor (``python -m gateway`` with ``GATEWAY_WORKERS`` > 1) checks that the port is
free, makes a private directory for the workers' unix sockets (:mod:`.cluster`) and for
prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, :mod:`.metrics`), and
starts the workers (multiprocessing, spawn). Each worker binds its own listening socket with
``SO_REUSEPORT``, so the kernel spreads connections over the workers evenly by their
addresses (one shared socket would let the busiest worker's accept loop win most of
them). Only worker 0 serves the gRPC port. A worker that dies is started again (its
statistics since the last reset are lost with it; its metrics files stay). SIGTERM (or
SIGINT) stops every worker gracefully and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from .config import Settings, env_name, load_settings
from .metrics import MULTIPROC_ENV

log = logging.getLogger("gateway.workers")
#: how long stopping workers may take before they are killed (uvicorn's graceful shutdown is 10 s)
STOP_GRACE_S = 15.0


class PortTakenError(OSError):
    """The gateway's port is in use by another process."""


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))  # without SO_REUSEPORT: fails if anyone listens here
        except OSError as exc:
            raise PortTakenError(f"port {port} on {host} is not free ({exc}); set {env_name('port')}") from None


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket with ``SO_REUSEPORT``: every worker binds its own on the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_worker(index: int, workers: int, directory: str) -> None:
    """One worker: the app (gRPC only in worker 0) on its own ``SO_REUSEPORT`` socket until SIGTERM."""
    import uvicorn

    from .app import create_app
    from .cluster import Cluster
    from .server import uvicorn_config

    settings = load_settings()
    if index > 0:
        settings = settings.model_copy(update={"grpc_port": 0})
    logging.basicConfig(
        level=settings.log_level.upper(), format=f"%(asctime)s %(levelname)s %(name)s[w{index}]: %(message)s"
    )
    app = create_app(settings, cluster=Cluster(Path(directory), index, workers))
    sock = listening_socket(settings.host, settings.port)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)  # see __main__: a graceful stop exits 0
    uvicorn.Server(uvicorn_config(app, settings)).run(sockets=[sock])


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until SIGTERM/SIGINT; restart any that dies."""
    _check_port(settings.host, settings.port)
    directory = Path(tempfile.mkdtemp(prefix="duoserve-gateway-"))
    metrics_dir = directory / "metrics"
    metrics_dir.mkdir()
    os.environ[MULTIPROC_ENV] = str(metrics_dir)  # the spawned workers import prometheus_client with it
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(index: int) -> BaseProcess:
        process = context.Process(
            target=serve_worker, args=(index, settings.workers, str(directory)), name=f"gateway-worker-{index}"
        )
        process.start()
        return process

    processes = {index: start(index) for index in range(settings.workers)}
    log.info("gateway: %d workers on %s:%d (SO_REUSEPORT)", settings.workers, settings.host, settings.port)
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in list(processes.items()):
                if process.is_alive() or stopping:
                    continue
                log.error("gateway worker %d (pid %s) exited with %s; starting it again", index, process.pid,
                          process.exitcode)  # fmt: skip
                _mark_dead(process.pid)
                processes[index] = start(index)
    finally:
        for process in processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes.values():
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
