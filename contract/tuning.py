"""A tuned serving configuration: what ``python -m loadtests tune`` found best, and what
``python -m stack up --tuned FILE`` (``make up TUNED=FILE``) starts with.

One JSON file per tuning run. It names the model it was tuned for and the SLO it was
tuned against, TorchServe's per-archive settings (the keys of
``services/torch_api/model-config.yaml``), Triton's per-model batcher and instance count (its
``config.pbtxt``) and the TF server's batching window (fields of TF Serving's
``BatchingParameters``). A field left out keeps the shipped value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .artifacts import atomic_file


class TunedFileError(ValueError):
    """A tuned file is missing or malformed; the message names the file and the problem."""


class TorchServeSettings(BaseModel):
    """One TorchServe archive's settings (``model-config.yaml`` keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: requests TorchServe merges into one handler call
    batchSize: int = Field(ge=1, le=1024)  # noqa: N815  (TorchServe's own key)
    #: ms TorchServe waits for a batch to fill (0 would mean its 100 ms default, so at least 1)
    maxBatchDelay: int = Field(ge=1, le=1000)  # noqa: N815
    #: worker processes (minWorkers = maxWorkers)
    workers: int = Field(ge=1, le=64)
    #: intra-op threads per worker (the handler's default: cores // workers)
    intraOpThreads: int | None = Field(default=None, ge=1, le=64)  # noqa: N815

    def model_config_keys(self) -> dict[str, int]:
        """The archive's ``model-config.yaml`` keys."""
        keys = {
            "batchSize": self.batchSize,
            "maxBatchDelay": self.maxBatchDelay,
            "minWorkers": self.workers,
            "maxWorkers": self.workers,
        }
        if self.intraOpThreads is not None:
            keys["intraOpThreads"] = self.intraOpThreads
        return keys


class TritonSettings(BaseModel):
    """One Triton model's ``instance_group`` count and ``dynamic_batching`` window (its ``config.pbtxt``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: model instances (each a python-backend stub with one intra-op thread)
    instances: int = Field(ge=1, le=64)
    #: microseconds the dynamic batcher waits for the preferred batch
    max_queue_delay_microseconds: int = Field(ge=0, le=1_000_000)
    #: rows the dynamic batcher aims for (never more than the model's max_batch)
    preferred_batch_size: int = Field(ge=1, le=1024)


class TfBatchingSettings(BaseModel):
    """The TF server's batching window. ``max_batch_size`` itself stays the largest request the
    manifest admits (TF Serving refuses larger ones); the batch actually run is
    ``max_execution_batch_size`` rows (large-batch splitting is on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_execution_batch_size: int = Field(ge=1, le=1024)
    batch_timeout_micros: int = Field(ge=0, le=1_000_000)
    num_batch_threads: int = Field(ge=1, le=64)


class TunedConfig(BaseModel):
    """The best configuration per stack for one model, batch and SLO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    batch: int = Field(ge=1)
    slo_ms: float = Field(gt=0)
    #: TorchServe archive name (``digits``, ``digits_ort``) -> its settings
    torchserve: dict[str, TorchServeSettings] = Field(default_factory=dict)
    #: Triton model name (``digits``, ``digits_ort``) -> its settings
    triton: dict[str, TritonSettings] = Field(default_factory=dict)
    tf: TfBatchingSettings | None = None
    #: what the tuning measured (capacities per stack, default and tuned); informative only
    evidence: dict[str, Any] = Field(default_factory=dict)

    def write(self, path: Path) -> None:
        """Write atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            tmp.write_text(self.model_dump_json(indent=2, exclude_none=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> TunedConfig:
        """Read ``path``; :class:`TunedFileError` in one line when it is missing or malformed."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise TunedFileError(f"tuned file {path}: cannot read ({exc.strerror or exc})") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise TunedFileError(f"tuned file {path}: {where}: {first['msg']}") from None
