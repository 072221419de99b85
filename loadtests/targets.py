"""The targets a load test can hit, and where they live (from ``stack.json`` or explicit URLs).

A target is one way of asking for a prediction: TorchServe direct (TorchScript or ONNX
Runtime), Triton direct (the same artifacts, its Open Inference Protocol REST API with binary
tensors), the TF server's REST API direct, the gateway pinned to one backend (its own JSON,
``/v1``, or the Open Inference Protocol, ``/v2``, with JSON or binary tensors), or the
gateway's ``/compare``. Comparing ``gw_<backend>``, ``gw_v2_<backend>`` and
``gw_v2b_<backend>`` compares protocols; comparing backends compares stacks. Nothing here
imports Locust, so the runner, the report and the tests share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contract.keys import read_key
from contract.stackinfo import StackInfo, StackInfoError
from loadtests.payload import Encoding

Kind = Literal["torch", "triton", "tf", "gateway", "compare", "v2", "v2_binary"]


@dataclass(frozen=True)
class Target:
    """One target: its name (the Locust ``name=`` group), kind, and the backend behind it."""

    name: str
    kind: Kind
    backend: str
    description: str

    @property
    def via_gateway(self) -> bool:
        return self.kind in ("gateway", "compare", "v2", "v2_binary")

    @property
    def encoding(self) -> Encoding:
        """How its request bodies are written (:func:`loadtests.payload.encoded`)."""
        if self.kind in ("v2_binary", "triton"):
            return "v2_binary"
        return "v2" if self.kind == "v2" else "v1"


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("torch", "torch", "torch", "TorchServe direct, TorchScript"),
        Target("torch_ort", "torch", "torch_ort", "TorchServe direct, ONNX Runtime"),
        Target("triton", "triton", "triton", "Triton direct, TorchScript (v2 REST, binary tensors)"),
        Target("triton_ort", "triton", "triton_ort", "Triton direct, ONNX Runtime (v2 REST, binary tensors)"),
        Target("tf", "tf", "tf", "TF server direct, REST"),
        Target("gw_torch", "gateway", "torch", "gateway → TorchServe (TorchScript)"),
        Target("gw_torch_ort", "gateway", "torch_ort", "gateway → TorchServe (ONNX Runtime)"),
        Target("gw_triton", "gateway", "triton", "gateway → Triton (TorchScript)"),
        Target("gw_triton_ort", "gateway", "triton_ort", "gateway → Triton (ONNX Runtime)"),
        Target("gw_tf", "gateway", "tf", "gateway → TF server (REST)"),
        Target("gw_compare", "compare", "all", "gateway /compare: every backend, concurrently"),
        Target("gw_v2_torch", "v2", "torch", "gateway v2 REST, JSON tensors → TorchServe (TorchScript)"),
        Target("gw_v2_torch_ort", "v2", "torch_ort", "gateway v2 REST, JSON tensors → TorchServe (ONNX Runtime)"),
        Target("gw_v2_tf", "v2", "tf", "gateway v2 REST, JSON tensors → TF server (gRPC)"),
        Target("gw_v2b_torch", "v2_binary", "torch", "gateway v2 REST, binary tensors → TorchServe (TorchScript)"),
        Target("gw_v2b_torch_ort", "v2_binary", "torch_ort", "gateway v2 REST, binary tensors → TorchServe (ONNX RT)"),
        Target("gw_v2b_tf", "v2_binary", "tf", "gateway v2 REST, binary tensors → TF server (gRPC)"),
        Target("gw_v2b_triton", "v2_binary", "triton", "gateway v2 REST, binary tensors → Triton (TorchScript)"),
        Target("gw_v2b_triton_ort", "v2_binary", "triton_ort", "gateway v2 REST, binary tensors → Triton (ONNX RT)"),
    )
}
#: Direct target whose figures a gateway target is compared with (gateway overhead).
DIRECT_OF: dict[str, str] = {
    "gw_torch": "torch", "gw_torch_ort": "torch_ort", "gw_triton": "triton", "gw_triton_ort": "triton_ort",
    "gw_tf": "tf",
}  # fmt: skip


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
    #: Triton's HTTP port, when the stack runs Triton
    triton: str | None = None
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
            triton=info.triton.rstrip("/") if info.triton else None,
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
            triton=self.triton,
            gateway_backends=self.gateway_backends,
            stack=self.stack,
            gateway_api_key=api_key or self.gateway_api_key,
        )

    def host(self, target: Target) -> str:
        """The base URL a target's requests go to."""
        if target.via_gateway:
            return self.gateway
        if target.kind == "triton":
            if self.triton is None:
                raise ValueError(f"target {target.name}: the stack runs no Triton (TRITON_API_MODELS=none)")
            return self.triton
        return self.torch if target.kind == "torch" else self.tf_rest

    def compare_backends(self, model: str) -> list[str]:
        """The backends the gateway's ``/compare`` calls for ``model`` (all three if unknown)."""
        return list(self.gateway_backends.get(model) or ["torch", "torch_ort", "tf"])


def headers(endpoints: Endpoints, target: Target, inference_key: str | None) -> dict[str, str]:
    """The request headers of ``target``: TorchServe's token, the gateway's API key and backend.

    A body's own headers (:func:`loadtests.payload.encoded`: a binary body's content type and
    JSON header length) go on top of these.
    """
    found = {"Content-Type": "application/json"}
    if target.kind == "torch" and inference_key:
        found["Authorization"] = f"Bearer {inference_key}"
    if target.via_gateway and endpoints.gateway_api_key:
        found["X-API-Key"] = endpoints.gateway_api_key
    if target.kind in ("gateway", "v2", "v2_binary"):
        found["X-Backend"] = target.backend
    return found


def path(target: Target, model: str) -> str:
    """The request path of ``target`` for ``model``."""
    if target.kind == "torch":
        return f"/predictions/{model}_ort" if target.backend == "torch_ort" else f"/predictions/{model}"
    if target.kind == "triton":
        return f"/v2/models/{model}_ort/infer" if target.backend == "triton_ort" else f"/v2/models/{model}/infer"
    if target.kind == "tf":
        return f"/v1/models/{model}:predict"
    if target.kind == "compare":
        return f"/v1/models/{model}/compare"
    if target.kind in ("v2", "v2_binary"):
        return f"/v2/models/{model}/infer"
    return f"/v1/models/{model}/predict"


def torch_key(key_file: str | None) -> str | None:
    """TorchServe's current inference key from its ``key_file.json`` (None without a file)."""
    return read_key(Path(key_file)) if key_file else None
