"""Assemble and run the compatible server: load models, start REST and gRPC, stop on a signal.

:func:`serve` returns the process exit code: 0 after a clean SIGTERM/SIGINT stop, 2 when
a config file is wrong or no model version could be loaded (each failure is logged).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from services.tf_api.compat import SERVER_HEADER, SERVER_NAME
from services.tf_api.compat.dataplane import DataPlane
from services.tf_api.compat.grpc_api import create_server
from services.tf_api.compat.metrics import Metrics
from services.tf_api.compat.rest import State, create_app
from services.tf_api.compat.servables import ModelRegistry
from services.tf_api.config import ConfigError, load_batching, load_models, load_monitoring
from services.tf_api.settings import Settings

log = logging.getLogger(__name__)
#: Seconds in-flight gRPC calls get to finish on shutdown.
GRACE_SECONDS = 5.0


def _summary(registry: ModelRegistry) -> str:
    parts = []
    for name, model in registry.models.items():
        versions = ",".join(f"{v}:{s.state}" for v, s in sorted(model.versions.items())) or "none"
        parts.append(f"{name}[{versions}]")
    return " ".join(parts)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; see the module docstring for the exit codes."""
    try:
        entries = load_models(settings.models_config_path, settings.artifacts)
        batching = load_batching(settings.batching_config) if settings.enable_batching else None
        monitoring = load_monitoring(settings.monitoring_config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    registry = ModelRegistry()
    await asyncio.to_thread(registry.load, entries)
    if registry.available_count() == 0:
        log.error("no model version could be loaded: %s", _summary(registry))
        return 2
    threads = batching.num_batch_threads if batching else settings.inference_threads
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tf-run")
    metrics = Metrics()
    dataplane = DataPlane(batching, executor, metrics)
    app = create_app(State(registry, dataplane, metrics, settings.max_body_bytes), monitoring)
    # a log line per request costs more than an mlp predict: only with TF_API_ACCESS_LOG=true
    access = logging.getLogger("tf_api.access") if settings.access_log else None
    if access is not None:
        access.setLevel(logging.INFO)
    runner = web.AppRunner(app, access_log=access)
    await runner.setup()
    grpc_server = None
    try:
        await web.TCPSite(runner, settings.host, settings.rest_port).start()
        grpc_address = f"{settings.host}:{settings.grpc_port}"
        grpc_server = create_server(registry, dataplane, grpc_address, settings.max_body_bytes)
        await grpc_server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(
            f"tf_api: started {SERVER_NAME} (TF-Serving-compatible Python server, answers carry "
            f"{SERVER_HEADER}: {SERVER_NAME}); REST http://{settings.host}:{settings.rest_port} "
            f"gRPC {grpc_address}; batching {'on' if batching else 'off'}; models {_summary(registry)}",
            flush=True,
        )
        await stop.wait()
        log.info("stopping: signal received")
    finally:
        if grpc_server is not None:
            await grpc_server.stop(GRACE_SECONDS)
        await runner.cleanup()
        executor.shutdown(wait=True, cancel_futures=True)
    return 0
