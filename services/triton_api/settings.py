"""Settings of the native Triton launcher, from ``TRITON_API_*`` environment variables.

Ports default to 8100 (HTTP), 8101 (gRPC) and 8102 (metrics): Triton's own defaults (8000,
8001, 8002) are the gateway's HTTP and gRPC ports here. Every port binds to ``host``, which
must be a loopback address: Triton binds ``0.0.0.0`` unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.artifacts import default_root
from services.selection import chosen, loopback, model_list

ENV_PREFIX = "TRITON_API_"
REPO = Path(__file__).resolve().parents[2]


class TritonApiSettings(BaseSettings):
    """Where Triton listens, what it loads, and where its repository and logs go."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    http_port: int = Field(8100, ge=1, le=65535)
    grpc_port: int = Field(8101, ge=1, le=65535)
    metrics_port: int = Field(8102, ge=1, le=65535)
    artifacts: Path = Field(default_factory=default_root)
    #: "all", "none" (the stack starts no Triton), or a comma-separated list of Triton model names
    #: (``digits``, ``digits_ort``, ...: the names of TorchServe's archives).
    models: str = "all"
    #: The generated model repository and the backend directory live here (written before Triton starts).
    run_dir: Path = REPO / ".run" / "triton_api"
    log_dir: Path = REPO / "logs" / "triton_api"
    ready_timeout_s: float = Field(300.0, gt=0)
    #: The ``tritonserver`` binary; default: the one in the ``nvidia-pytriton`` wheel of this venv.
    binary: Path | None = None
    #: Instances of each model; default: TorchServe's worker count for the model (model-config.yaml).
    instances: int | None = Field(None, ge=1, le=64)
    #: A tuned file (``python -m loadtests tune``): its ``triton`` windows win over TorchServe's (``stack up
    #: --tuned`` sets it).
    tuned: Path | None = None
    #: Triton's ``--log-verbose`` level (0: errors, warnings and start-up info only).
    log_verbose: int = Field(0, ge=0, le=3)

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        return loopback(value, "TRITON_API_HOST")

    @field_validator("models")
    @classmethod
    def _model_list(cls, value: str) -> str:
        return model_list(value, "TRITON_API_MODELS", "model name", ("all", "none"))

    @property
    def enabled(self) -> bool:
        """Whether the stack starts Triton at all (``TRITON_API_MODELS=none``: no)."""
        return self.models != "none"

    def model_names(self, available: list[str]) -> list[str]:
        """The Triton model names to load, checked against what the artifacts allow."""
        return chosen(self.models, available, "TRITON_API_MODELS", "which the artifacts do not provide")
