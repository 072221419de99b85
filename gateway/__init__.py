"""duoserve's gateway: one API over TorchServe and TF Serving that routes, compares and measures.

Public: :func:`create_app` and :class:`Settings` (``GATEWAY_*`` environment variables).
Two protocols over one data plane: its own JSON (``/v1``) and the Open Inference Protocol
(``/v2`` and gRPC, :mod:`gateway.protocol.v2`). It imports neither torch nor tensorflow: its
gRPC messages are generated into :mod:`gateway.protos`.
"""

from __future__ import annotations

from .app import create_app
from .config import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "create_app", "load_settings"]
