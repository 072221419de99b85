"""duoserve's gateway: one API over TorchServe and TF Serving that routes, compares and measures.

Public: :func:`create_app` and :class:`Settings` (``GATEWAY_*`` environment variables).
Two protocols over one data plane: its own JSON (``/v1``) and the Open Inference Protocol
(``/v2`` and gRPC, :mod:`gateway.protocol.v2`). It imports neither torch nor tensorflow: its
gRPC messages are generated into :mod:`gateway.protos`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["Settings", "SettingsError", "create_app", "load_settings"]


def __getattr__(name: str) -> Any:
    # the app (and with it FastAPI) loads on first use: importing the data plane alone loads no web framework
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
