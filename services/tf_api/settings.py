"""The tf_api service's settings: one pydantic-settings class read from ``TF_API_*`` variables.

A bad value fails start-up with :class:`contract.settings.SettingsError`, whose message
names the environment variable (not the field), e.g. ``TF_API_REST_PORT: Input should be less
than or equal to 65535 (got '70000')``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.artifacts import TF_MODELS_CONFIG, default_root
from contract.settings import SettingsError, load
from services.tf_api.config import DEFAULT_BATCHING_CONFIG, DEFAULT_MONITORING_CONFIG

ENV_PREFIX = "TF_API_"
REPO = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Every knob of the tf_api service (binary or compatible server)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    #: Interface both ports bind to (the binary: the launcher's forwarders to its network namespace).
    host: str = "127.0.0.1"
    rest_port: int = Field(8501, ge=1, le=65535)
    grpc_port: int = Field(8500, ge=1, le=65535)
    #: Artifacts root; SavedModels live under <artifacts>/tf/<model>/<version>/.
    artifacts: Path = Field(default_factory=default_root)
    #: TF Serving's model_config_list; default: the one the build writes, <artifacts>/tf/models.config.
    models_config: Path | None = None
    batching_config: Path = DEFAULT_BATCHING_CONFIG
    monitoring_config: Path = DEFAULT_MONITORING_CONFIG
    enable_batching: bool = True
    #: Largest request body (REST) or message (gRPC) accepted. resnet x 32 is 4.8 M floats:
    #: ~50 MB as shortest float32 text, ~96 MB as Python's json writes float32 values (17
    #: digits), so 128 MiB lets either through and refuses anything much larger.
    max_body_bytes: int = Field(128 * 1024 * 1024, ge=1024)
    #: auto: the binary when it is on PATH (and can be kept on loopback), else the compatible server.
    server: Literal["auto", "binary", "compat"] = "auto"
    #: Run the binary without its network namespace, listening on every interface (it has no flag for one).
    binary_any_interface: bool = False
    log_dir: Path = REPO / "logs" / "tf_api"
    #: Level of the compatible server's log (compat.log and the console): warnings and errors by default.
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    #: One line per REST request (the compatible server; the binary has no access log), off by default.
    access_log: bool = False
    #: compat.log and the binary's log roll over at this size, keeping log_backups old copies.
    log_max_bytes: int = Field(10 * 1024 * 1024, ge=4096)
    log_backups: int = Field(3, ge=0, le=100)
    #: Threads for TF calls when batching is off (with batching, num_batch_threads).
    inference_threads: int = Field(2, ge=1, le=64)

    @property
    def models_config_path(self) -> Path:
        """``models_config``, or the one the build writes beside the SavedModels."""
        return self.models_config or self.artifacts / TF_MODELS_CONFIG

    @model_validator(mode="after")
    def _ports_differ(self) -> Settings:
        if self.rest_port == self.grpc_port:
            raise ValueError(f"{ENV_PREFIX}REST_PORT and {ENV_PREFIX}GRPC_PORT are both {self.rest_port}")
        return self


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and ``overrides``); :class:`SettingsError` names the bad variable."""
    return load(Settings, **overrides)


__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "load_settings"]
