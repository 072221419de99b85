"""Assemble the FastAPI app: ``create_app(settings)``; the lifespan owns the backend pools and the gRPC server."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .backends import BackendClient, build_backends
from .cluster import Cluster
from .config import Settings, check_against_models
from .dataplane import DataPlane
from .edge import InferenceEdge
from .handlers import add_exception_handlers
from .models import load_models
from .protocol import v2
from .protocol.v2.rest import infer
from .routes import predict, router
from .security import ApiKeyMiddleware

log = logging.getLogger("gateway")

#: builds the backend clients inside the running loop; tests hand in their own
ClientFactory = Callable[[Settings, set[str]], dict[str, BackendClient]]
#: how long running gRPC calls may take to finish at shutdown (uvicorn gives HTTP requests 10 s)
GRPC_GRACE_S = 10.0


def create_app(
    settings: Settings,
    *,
    clients: ClientFactory = build_backends,
    rng: random.Random | None = None,
    cluster: Cluster | None = None,
) -> FastAPI:
    """The gateway app; reads the manifest now (a bad one fails here), opens pools at start-up.

    ``cluster``: this worker's siblings when ``GATEWAY_WORKERS`` > 1 (:mod:`.workers`).
    """
    models = load_models(settings.manifest)
    check_against_models(settings, models)
    needed: set[str] = {str(b) for m in models for b in settings.serving(m)}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plane = DataPlane(settings, models, clients(settings, needed), rng=rng, cluster=cluster)
        app.state.plane = plane
        if cluster is not None:
            await cluster.start(plane.local_dump, plane.reset_local)
        if settings.torch_key_file is None and needed & {"torch", "torch_ort"}:
            log.warning("GATEWAY_TORCH_KEY_FILE is unset: TorchServe requests carry no token")
        grpc_server = v2.GrpcServer(settings, plane, app.version) if settings.grpc_port else None
        try:
            if grpc_server is not None:
                await grpc_server.start()
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(GRPC_GRACE_S)
            if cluster is not None:
                await cluster.stop()
            await plane.close()

    app = FastAPI(
        title="duoserve gateway",
        version="0.1.0",
        description="One API over TorchServe and TF Serving that routes, compares and measures every request.",
        lifespan=lifespan,
    )
    _add_middleware(app, settings)
    app.include_router(router)
    app.include_router(v2.router)
    add_exception_handlers(app)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # added first, so innermost: every middleware added after it (the API key's, any other) wraps it
    app.add_middleware(InferenceEdge, routers=(router, v2.router), endpoints=(predict, infer))
    if settings.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, key=settings.api_key.get_secret_value())
