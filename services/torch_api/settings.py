"""Settings of the native TorchServe launcher, from ``TORCH_API_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.artifacts import default_root
from services.selection import chosen, loopback, model_list

REPO = Path(__file__).resolve().parents[2]
#: TorchServe's per-model settings packed into each archive (batching, workers).
MODEL_CONFIG = Path(__file__).resolve().parent / "model-config.yaml"
#: TorchServe's production logging (WARN, no access log, every file bounded).
LOG4J2 = Path(__file__).resolve().parent / "log4j2.xml"


def model_config(name: str) -> dict[str, Any]:
    """TorchServe's per-model settings for model ``name`` from ``model-config.yaml``."""
    data = yaml.safe_load(MODEL_CONFIG.read_text())
    config = dict(data["defaults"])
    config.update(data["models"].get(name, {}))
    return config


class TorchApiSettings(BaseSettings):
    """Where TorchServe listens, what it loads, and where it keeps logs and keys."""

    model_config = SettingsConfigDict(env_prefix="TORCH_API_", extra="ignore")

    host: str = "127.0.0.1"
    inference_port: int = Field(8080, ge=1, le=65535)
    management_port: int = Field(8081, ge=1, le=65535)
    metrics_port: int = Field(8082, ge=1, le=65535)
    grpc_inference_port: int = Field(7070, ge=1, le=65535)
    grpc_management_port: int = Field(7071, ge=1, le=65535)
    #: First port of the worker sockets (/tmp/.ts.sock.<port>); differ per instance on one host.
    worker_port: int = Field(9000, ge=1024, le=65000)
    artifacts: Path = Field(default_factory=default_root)
    #: "all", or a comma-separated list of archive names (mlp, digits_ort, ...).
    models: str = "all"
    #: Working directory of TorchServe: key_file.json and the effective config live here.
    run_dir: Path = REPO / ".run" / "torch_api"
    log_dir: Path = REPO / "logs" / "torch_api"
    ready_timeout_s: float = Field(300.0, gt=0)
    token_expiration_min: int = Field(60, ge=1)
    #: Seconds between inference-key renewals; default half of token_expiration_min.
    key_renew_s: float | None = Field(None, gt=0)
    max_request_bytes: int = Field(128 * 1024 * 1024, ge=1024)
    job_queue_size: int = Field(100, ge=1)
    java: str = "java"
    #: config.properties to start from (the benchmark points this at TorchServe's defaults).
    config_template: Path = Path(__file__).resolve().parent / "config.properties"
    #: production: services/torch_api/log4j2.xml (WARN, bounded files); torchserve-default: TorchServe's own
    #: (DEBUG, an access-log line per request, unrotated console copy), for the logging benchmark.
    logging: Literal["production", "torchserve-default"] = "production"
    #: Level of every TorchServe logger with the production logging.
    log_level: Literal["error", "warn", "info", "debug"] = "warn"
    #: Level of the workers' own output (MODEL_LOG): info, because the worker writes its errors to stdout,
    #: which TorchServe reads as INFO; the worker's line per batch is filtered out (log4j2.xml).
    model_log_level: Literal["error", "warn", "info", "debug"] = "info"
    #: One access-log line per request (access_log.log), off by default in runs and benchmarks.
    access_log: bool = False
    #: The launcher's copy of TorchServe's console (stdout.log) rolls over at this size, keeping log_backups copies.
    log_max_bytes: int = Field(10 * 1024 * 1024, ge=4096)
    log_backups: int = Field(3, ge=0, le=100)

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        # Management and metrics share the host; they must never face the network.
        return loopback(value, "TORCH_API_HOST")

    @field_validator("models")
    @classmethod
    def _model_list(cls, value: str) -> str:
        return model_list(value, "TORCH_API_MODELS", "archive name")

    def model_names(self, available: list[str]) -> list[str]:
        """The archive names to load, checked against the model store."""
        return chosen(self.models, available, "TORCH_API_MODELS", "not in the model store")
