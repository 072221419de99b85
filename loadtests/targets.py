"""The targets a load test can hit, and where they live (from ``stack.json`` or explicit URLs).

A target is one way of asking for a prediction: TorchServe direct (TorchScript or ONNX
Runtime), the TF server's REST API direct, the gateway pinned to one backend, or the
gateway's ``/compare``. Nothing here imports Locust, so the runner, the report and the
tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contract.keys import read_key
from contract.stackinfo import StackInfo, StackInfoError

Kind = Literal["torch", "tf", "gateway", "compare"]


@dataclass(frozen=True)
class Target:
    """One target: its name (the Locust ``name=`` group), kind, and the backend behind it."""

    name: str
    kind: Kind
    backend: str
    description: str

    @property
    def via_gateway(self) -> bool:
        return self.kind in ("gateway", "compare")


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("torch", "torch", "torch", "TorchServe direct, TorchScript"),
        Target("torch_ort", "torch", "torch_ort", "TorchServe direct, ONNX Runtime"),
        Target("tf", "tf", "tf", "TF server direct, REST"),
        Target("gw_torch", "gateway", "torch", "gateway → TorchServe (TorchScript)"),
        Target("gw_torch_ort", "gateway", "torch_ort", "gateway → TorchServe (ONNX Runtime)"),
        Target("gw_tf", "gateway", "tf", "gateway → TF server (REST)"),
        Target("gw_compare", "compare", "all", "gateway /compare: every backend, concurrently"),
    )
}
#: Direct target whose figures a gateway target is compared with (gateway overhead).
DIRECT_OF: dict[str, str] = {"gw_torch": "torch", "gw_torch_ort": "torch_ort", "gw_tf": "tf"}


def get_target(name: str) -> Target:
    """The target called ``name``; ``KeyError`` lists the known ones."""
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the running stack and TorchServe's key file."""

    gateway: str
    torch: str
    tf_rest: str
    torch_key_file: str | None = None
    tf_server: str | None = None
    gateway_backends: dict[str, list[str]] = field(default_factory=dict)
    #: The running stack's description, when the endpoints came from ``stack.json``.
    stack: StackInfo | None = None
    #: The gateway's API key (``GATEWAY_API_KEY``), if it requires one; never written to a report.
    gateway_api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_stack_json(cls, path: Path) -> Endpoints:
        """Read the ``stack.json`` that ``python -m stack up`` writes."""
        try:
            info = StackInfo.read(path)
        except StackInfoError as exc:
            raise FileNotFoundError(str(exc)) from None
        return cls(
            gateway=info.gateway.rstrip("/"),
            torch=info.torch.rstrip("/"),
            tf_rest=info.tf_rest.rstrip("/"),
            torch_key_file=str(info.torch_key_file),
            tf_server=info.tf_server,
            gateway_backends=info.gateway_backends,
            stack=info,
        )

    def with_overrides(
        self,
        gateway: str | None,
        torch: str | None,
        tf_rest: str | None,
        key_file: str | None,
        api_key: str | None = None,
    ) -> Endpoints:
        """The same endpoints with any explicitly given URL taking precedence."""
        return Endpoints(
            gateway=(gateway or self.gateway).rstrip("/"),
            torch=(torch or self.torch).rstrip("/"),
            tf_rest=(tf_rest or self.tf_rest).rstrip("/"),
            torch_key_file=key_file or self.torch_key_file,
            tf_server=self.tf_server,
            gateway_backends=self.gateway_backends,
            stack=self.stack,
            gateway_api_key=api_key or self.gateway_api_key,
        )

    def host(self, target: Target) -> str:
        """The base URL a target's requests go to."""
        if target.via_gateway:
            return self.gateway
        return self.torch if target.kind == "torch" else self.tf_rest

    def compare_backends(self, model: str) -> list[str]:
        """The backends the gateway's ``/compare`` calls for ``model`` (all three if unknown)."""
        return list(self.gateway_backends.get(model) or ["torch", "torch_ort", "tf"])


def headers(endpoints: Endpoints, target: Target, inference_key: str | None) -> dict[str, str]:
    """The request headers of ``target``: TorchServe's token, the gateway's API key and backend."""
    found = {"Content-Type": "application/json"}
    if target.kind == "torch" and inference_key:
        found["Authorization"] = f"Bearer {inference_key}"
    if target.via_gateway and endpoints.gateway_api_key:
        found["X-API-Key"] = endpoints.gateway_api_key
    if target.kind == "gateway":
        found["X-Backend"] = target.backend
    return found


def path(target: Target, model: str) -> str:
    """The request path of ``target`` for ``model``."""
    if target.kind == "torch":
        return f"/predictions/{model}_ort" if target.backend == "torch_ort" else f"/predictions/{model}"
    if target.kind == "tf":
        return f"/v1/models/{model}:predict"
    if target.kind == "compare":
        return f"/v1/models/{model}/compare"
    return f"/v1/models/{model}/predict"


def torch_key(key_file: str | None) -> str | None:
    """TorchServe's current inference key from its ``key_file.json`` (None without a file)."""
    return read_key(Path(key_file)) if key_file else None
