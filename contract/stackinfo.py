"""``stack.json``: what a running native stack is, written once by ``python -m stack up`` and read by its users.

The load tests, the reliability runs, the benchmarks and the tests find the stack's URLs,
TorchServe's key file and which TF server runs here, typed, instead of reading a dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .artifacts import atomic_file

STACK_FILE = "stack.json"
#: Which TF server answered: the real binary, or duoserve's TF-Serving-compatible server, which marks
#: every answer (REST header, gRPC initial metadata) with ``X-TF-Server: duoserve-compat``.
TF_BINARY = "tensorflow_model_server"
TF_COMPAT = "duoserve-compat"
TF_SERVER_HEADER = "X-TF-Server"


class StackInfoError(ValueError):
    """``stack.json`` is missing or not one this version wrote; the message says what to do."""


class StackInfo(BaseModel):
    """Where each part of a running stack answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str
    #: the gateway's Open Inference Protocol gRPC address (``host:port``); None when it is off
    gateway_grpc: str | None = None
    torch: str
    torch_management: str
    torch_metrics: str
    torch_key_file: Path
    #: ``all`` or the TorchServe archive names loaded.
    torch_models: str
    tf_rest: str
    tf_grpc: str
    #: Triton's HTTP (Open Inference Protocol), gRPC and metrics addresses; None when the stack runs no Triton.
    triton: str | None = None
    triton_grpc: str | None = None
    triton_metrics: str | None = None
    #: ``all``, ``none`` or the Triton model names loaded (``digits``, ``digits_ort``: TorchServe's archive names).
    triton_models: str = "none"
    #: :data:`TF_COMPAT` or :data:`TF_BINARY`: which TF server produced a figure.
    tf_server: str
    models: list[str]
    gateway_backends: dict[str, list[str]]
    run_dir: Path
    log_dir: Path
    artifacts: Path
    pids: dict[str, int] = Field(default_factory=dict)
    #: The serving settings (each TorchServe archive's batching and workers, the TF batching window,
    #: the tuned file if any) and their hash, which every report prints beside its figures.
    serving: dict[str, Any] = Field(default_factory=dict)
    config_hash: str = ""

    @property
    def torch_port(self) -> int:
        return int(self.torch.rsplit(":", 1)[1])

    def write(self, path: Path) -> None:
        """The one writer: atomically, so a reader never sees half a file."""
        with atomic_file(path) as tmp:
            tmp.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> StackInfo:
        """Read ``path``; :class:`StackInfoError` says to start the stack when it is absent."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise StackInfoError(f"{path}: no stack description; start the stack (`make up`) first") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise StackInfoError(
                f"{path}: not a stack description of this version ({exc.errors()[0]['msg']})"
            ) from None
