"""A TF-Serving-compatible server (REST + gRPC) for machines without ``tensorflow_model_server``.

Public entry point: :func:`services.tf_api.compat.server.serve`. Every REST answer
carries ``X-TF-Server: duoserve-compat`` (:data:`SERVER_NAME`), and every gRPC call the
same as initial metadata, so a report can tell which TF server produced a figure; the
real binary sends neither.
"""

from __future__ import annotations

from contract.stackinfo import TF_COMPAT as SERVER_NAME
from contract.stackinfo import TF_SERVER_HEADER as SERVER_HEADER

__all__ = ["SERVER_HEADER", "SERVER_NAME"]
