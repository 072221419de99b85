"""A TF-Serving-compatible server (REST + gRPC) for machines without ``tensorflow_model_server``.

Public entry point: :func:`services.tf_api.compat.server.serve`. Every REST answer
carries ``X-TF-Server: duoserve-compat`` (:data:`SERVER_NAME`) so a report can tell
which TF server produced a figure; the real binary sends no such header.
"""

from __future__ import annotations

SERVER_NAME = "duoserve-compat"
SERVER_HEADER = "X-TF-Server"
