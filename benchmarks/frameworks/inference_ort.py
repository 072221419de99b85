"""ONNX Runtime in process: the exported ``.onnx`` artifact of any model, on CPU or its CUDA provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from benchmarks.frameworks.runtime import Bind, Outputs, UnavailableError, named_outputs
from contract.manifest import ModelEntry, read_manifest

_threads = 1


def setup(threads: int, device: str) -> dict[str, Any]:
    """Remember the thread count for every session; CUDA needs the CUDA provider."""
    global _threads
    _threads = threads
    providers = ort.get_available_providers()
    if device == "cuda" and "CUDAExecutionProvider" not in providers:
        raise UnavailableError(
            f"onnxruntime {ort.__version__} has no CUDAExecutionProvider (providers: {', '.join(providers)}); "
            "the CUDA build is the onnxruntime-gpu package"
        )
    return {"onnxruntime": ort.__version__, "ort_threads": threads, "ort_providers": providers}


def load(runtime: str, entry: ModelEntry, root: Path, device: str) -> Bind:
    """An inference session on the model's ONNX artifact; :class:`UnavailableError` says why it cannot run."""
    if runtime != "onnxruntime":
        raise UnavailableError(f"{runtime} is not an ONNX Runtime runtime")
    if "onnx" not in entry.artifacts:
        raise UnavailableError(f"{entry.name} has no ONNX artifact")
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads
    options.inter_op_num_threads = _threads
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    path = read_manifest(root).verify(root, entry.name, "onnx")
    session = ort.InferenceSession(str(path), options, providers=[provider])
    names = entry.output_names

    def bind(arrays: dict[str, np.ndarray]) -> Any:
        feed = {name: arrays[name] for name in entry.input_names}

        def call() -> Outputs:
            return named_outputs(entry, session.run(names, feed), np.asarray)

        return call

    return bind
