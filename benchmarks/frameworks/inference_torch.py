"""PyTorch's in-process runtimes: eager, TorchScript and ``torch.compile``, on CPU or CUDA.

Eager and ``torch.compile`` need the network's source, so they apply to built-in models
(``services/torch_api/models.py`` with their weights); TorchScript needs only its
artifact, so it runs any model that has one, a user's too, through the contract.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.frameworks import article_torch
from benchmarks.frameworks.runtime import Bind, Outputs, UnavailableError, has_source, named_outputs
from contract.manifest import ModelEntry, read_manifest
from contract.weights import load_weights
from services.torch_api.models import ARCHITECTURES
from services.torch_api.train import load_model


def setup(threads: int, device: str) -> dict[str, Any]:
    """Pin the thread counts (before any work) and describe this side; CUDA must exist when asked for."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise UnavailableError(f"torch {torch.__version__} sees no CUDA device")
    # full float32 on the GPU: TF32 convolutions and matmuls would buy speed with answers off by ~1e-3
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_cuda": torch.version.cuda,
        "cuda_device": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "tf32": False,
        "machine": platform.machine(),
    }


def compiler_check(device: str) -> str | None:
    """None if ``torch.compile`` (inductor) builds and runs a kernel here, else why not."""
    try:
        compiled = torch.compile(lambda t: t * 2 + 1, dynamic=False)
        value = compiled(torch.ones(4, device=device))
        if float(value.sum()) != 12.0:
            return "torch.compile ran but gave a wrong answer"
    except Exception as exc:  # noqa: BLE001 -- a missing compiler surfaces as many exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"torch.compile is unavailable here ({type(exc).__name__}: {first[:200]})"
    return None


def _bind(module: Any, entry: ModelEntry, device: str) -> Bind:
    def bind(arrays: dict[str, np.ndarray]) -> Any:
        def call() -> Outputs:
            with torch.inference_mode():
                tensors = [torch.from_numpy(arrays[name]).to(device) for name in entry.input_names]
                return named_outputs(entry, module(*tensors), lambda t: t.cpu().numpy())

        return call

    return bind


def load(runtime: str, entry: ModelEntry, root: Path, device: str) -> Bind:
    """The runtime's loaded model for ``entry``; :class:`UnavailableError` says why it cannot run."""
    manifest = read_manifest(root)
    if runtime == "torchscript":
        if "torchscript" not in entry.artifacts:
            raise UnavailableError(f"{entry.name} has no TorchScript artifact")
        path = manifest.verify(root, entry.name, "torchscript")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device).eval()
        return _bind(module, entry, device)
    if not has_source(entry, list(ARCHITECTURES)):
        raise UnavailableError(f"{runtime} needs the network's source code; {entry.name} is not a built-in model")
    eager = load_model(entry.name, manifest.verify(root, entry.name, "weights")).to(device)
    if runtime == "torch_eager":
        return _bind(eager, entry, device)
    if runtime == "torch_compile":
        why = compiler_check(device)
        if why:
            raise UnavailableError(why)
        return _bind(torch.compile(eager, dynamic=False), entry, device)
    raise UnavailableError(f"{runtime} is not a PyTorch runtime")


def rnn(init: Path, device: str) -> dict[str, Bind]:
    """The DynamicRNN (packed sequences) in eager mode, from the shared initial weights."""
    model = article_torch.build("dynamic_rnn", 0)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in load_weights(init).items()})
    model = model.to(device).eval()

    def bind(arrays: dict[str, np.ndarray]) -> Any:
        def call() -> Outputs:
            with torch.inference_mode():
                x = torch.from_numpy(arrays["x"]).to(device)
                out = model(x, torch.from_numpy(arrays["lengths"]))
                return {"y": out.cpu().numpy()}

        return call

    return {"torch_eager": bind}
