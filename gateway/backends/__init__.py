"""Backend clients behind one interface (:class:`BackendClient`), built from the settings.

``torch`` and ``torch_ort`` are TorchServe (``/predictions/{model}`` and ``{model}_ort``),
``triton`` and ``triton_ort`` are Triton's Open Inference Protocol REST API with binary tensors
(``/v2/models/{model}`` and ``{model}_ort``), built only when ``GATEWAY_TRITON_URL`` is set;
``tf`` is TF Serving over REST or, with ``GATEWAY_TF_PROTOCOL=grpc``, gRPC; with REST, the
binary requests of the Open Inference Protocol still go over gRPC (TF's REST API is JSON only).
"""

from __future__ import annotations

from ..config import Settings
from .base import BackendClient, BackendResult, Readiness
from .guard import AimdLimit, CircuitBreaker, Guard
from .h1 import H1Transport
from .tf_grpc import TFGrpcClient
from .tf_rest import TFRestClient
from .torchserve import TorchServeClient
from .transport import AiohttpTransport, HttpLimits, HttpxTransport, Transport
from .triton import TritonClient

__all__ = [
    "AimdLimit",
    "BackendClient",
    "BackendResult",
    "CircuitBreaker",
    "Guard",
    "HttpLimits",
    "Readiness",
    "Transport",
    "build_backends",
    "http_limits",
    "make_transport",
]


def make_transport(kind: str, backend: str, limits: HttpLimits, base_url: str) -> Transport:
    """``h1`` (duoserve's own keep-alive client), ``aiohttp`` or ``httpx``."""
    if kind == "httpx":
        return HttpxTransport(backend, limits)
    if kind == "aiohttp":
        return AiohttpTransport(backend, limits)
    return H1Transport(backend, limits, base_url)


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
        pool_size=settings.pool_size,
        retry_after_s=settings.retry_after_s,
    )


def build_backends(settings: Settings, names: set[str]) -> dict[str, BackendClient]:
    """One pooled client per backend in ``names``; call inside a running event loop."""
    limits = http_limits(settings)
    clients: dict[str, BackendClient] = {}
    torch_url = str(settings.torch_url)
    for name in sorted(names):
        if name in ("torch", "torch_ort"):
            transport = make_transport(settings.http_client, name, limits, torch_url)
            suffix = "_ort" if name == "torch_ort" else ""
            clients[name] = TorchServeClient(name, torch_url, transport, settings.torch_key_file, suffix)
        elif name in ("triton", "triton_ort") and settings.triton_url is not None:
            triton_url = str(settings.triton_url)
            transport = make_transport(settings.http_client, name, limits, triton_url)
            clients[name] = TritonClient(name, triton_url, transport, "_ort" if name == "triton_ort" else "")
        elif name == "tf":
            grpc_client = TFGrpcClient(
                name,
                settings.tf_grpc_target,
                connect_timeout_s=settings.connect_timeout_s,
                read_timeout_s=settings.read_timeout_s,
                retry_after_s=settings.retry_after_s,
            )
            if settings.tf_protocol == "grpc":
                clients[name] = grpc_client
            else:
                tf_url = str(settings.tf_url)
                transport = make_transport(settings.http_client, name, limits, tf_url)
                clients[name] = TFRestClient(name, tf_url, transport, binary=grpc_client)
    return clients
