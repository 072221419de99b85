"""duoserve's gateway: one API over TorchServe and TF Serving that routes, compares and measures.

Public: :func:`create_app` and :class:`Settings` (``GATEWAY_*`` environment variables).
It imports neither torch nor tensorflow (TF's gRPC stubs load only with ``GATEWAY_TF_PROTOCOL=grpc``).
"""

from __future__ import annotations

from .app import create_app
from .config import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "create_app", "load_settings"]
