"""The Open Inference Protocol (KServe v2) at the gateway: REST under ``/v2`` and the gRPC
``inference.GRPCInferenceService``, both with binary tensors, both thin adapters over the
data plane. The tensors themselves are read and written by :mod:`contract.oip`, which the
TorchServe handler shares, so a binary request stays binary all the way to the model.

Errors: REST answers the protocol's ``{"error": "..."}`` with the status of
:mod:`gateway.errors` (a bad input is 400 here, where ``/v1`` says 422); gRPC aborts with the
matching status code (:data:`.grpc_server.GRPC_CODES`).
"""

from __future__ import annotations

from .grpc_server import GrpcServer
from .rest import router

__all__ = ["GrpcServer", "router"]
