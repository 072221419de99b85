"""The Triton model repository, generated from the manifest: never written by hand, never by Triton.

Per model and backend (``triton``: the model's TorchScript or torch.export program;
``triton_ort``: its ONNX file, served as ``<model>_ort``)::

    <repository>/<name>/config.pbtxt      inputs, outputs, batching, instances, backend
    <repository>/<name>/1/model.json      the model's manifest entry (the contract)
    <repository>/<name>/1/model.pt|.pt2|.onnx   the artifact, verified against the manifest (a hard link)
    <repository>/<name>/1/model.py        services/triton_api/model.py (python backend only)
    <repository>/<name>/1/__pycache__/    its bytecode, written here so that Triton writes nothing (native)

``config.pbtxt`` takes everything from the contract: every input and output by name with
its datatype (``TYPE_`` + the Open Inference Protocol's datatype, :data:`contract.dtypes.DTYPES`)
and per-instance ``dims`` (``-1`` on a dynamic axis); ``max_batch_size`` is the model's
``max_batch``, so Triton admits exactly the requests the other stacks admit. A model with
a per-row scalar (a sequence length: shape ``[]``) gets ``max_batch_size: 0`` and its batch
axis in ``dims`` instead, so Triton's API takes the contract's shapes (``[N]``, not the
``[N, 1]`` Triton's ``reshape`` would ask of every client); Triton does not batch that model,
and ``model.py`` still refuses more than ``max_batch`` rows. The
dynamic batcher gets the execution window TorchServe has for the model
(``model-config.yaml``: ``batchSize`` as the preferred batch, ``maxBatchDelay`` as the queue
delay) and the instance count its worker count; each instance runs one intra-op thread.

Two targets: ``native`` (the ``tritonserver`` of PyPI's ``nvidia-pytriton``, which has only
the python backend: every model runs ``model.py`` with the venv's torch or onnxruntime)
and ``image`` (the official Triton image, with its ``onnxruntime`` backend: an ONNX model
gets platform ``onnxruntime_onnx``; TorchScript and torch.export programs stay on the python
backend, because ``pytorch_libtorch`` names outputs ``OUTPUT__0`` and cannot load a ``.pt2``).
"""

from __future__ import annotations

import importlib.util
import py_compile
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from contract.artifacts import link_or_copy
from contract.dtypes import DTYPES
from contract.manifest import Manifest, ModelEntry, TensorSpec
from contract.tuning import TunedConfig
from services.torch_api.settings import model_config

HERE = Path(__file__).resolve().parent
MODEL_PY = HERE / "model.py"
VERSION = "1"
#: backend -> (Triton model name suffix); ``triton_ort`` only where the model has an ONNX file
BACKENDS = {"triton": "", "triton_ort": "_ort"}
Target = Literal["native", "image"]
#: The artifact's file name in the version directory, by kind (Triton's default names).
_FILE_NAMES = {"torchscript": "model.pt", "torch_export": "model.pt2", "onnx": "model.onnx"}


@dataclass(frozen=True)
class Window:
    """The dynamic batcher's window and the instance count of one Triton model."""

    preferred_batch: int
    max_queue_delay_us: int
    instances: int
    intra_op_threads: int = 1


def artifact_kind(entry: ModelEntry, backend: str) -> str:
    """Which artifact a backend serves: the ONNX file, or the torch.export program before TorchScript."""
    if backend == "triton_ort":
        return "onnx"
    return "torch_export" if "torch_export" in entry.artifacts else "torchscript"


def triton_models(manifest: Manifest) -> dict[str, tuple[str, str]]:
    """Triton model name (``digits``, ``digits_ort``) -> (manifest model, backend), for every model."""
    return {
        f"{name}{suffix}": (name, backend)
        for name, entry in manifest.models.items()
        for backend, suffix in BACKENDS.items()
        if backend in entry.backends
    }


def default_window(model: str, instances: int | None = None) -> Window:
    """TorchServe's window for ``model`` (``model-config.yaml``), as Triton's batcher and instance group."""
    config = model_config(model)
    return Window(
        preferred_batch=int(config["batchSize"]),
        max_queue_delay_us=int(config["maxBatchDelay"]) * 1000,
        instances=instances or int(config["minWorkers"]),
    )


def windows(names: list[str], instances: int | None = None, tuned: TunedConfig | None = None) -> dict[str, Window]:
    """The window of every Triton model in ``names``: a tuned one where ``tuned`` has it, else TorchServe's."""
    found = {}
    for name in names:
        setting = tuned.triton.get(name) if tuned is not None else None
        if setting is not None:
            found[name] = Window(setting.preferred_batch_size, setting.max_queue_delay_microseconds, setting.instances)
        else:
            found[name] = default_window(name.removesuffix("_ort"), instances)
    return found


def batchable(entry: ModelEntry) -> bool:
    """Whether Triton can batch the model: every tensor has per-row dims (Triton refuses empty ``dims`` on a
    model with ``max_batch_size`` > 0; a per-row scalar such as a sequence length has none)."""
    return all(t.shape for t in (*entry.inputs, *entry.outputs))


def _tensor(tensor: TensorSpec, batched: bool = True) -> str:
    dims = ", ".join(str(d) for d in (tensor.shape if batched else [-1, *tensor.shape]))
    return f'  {{ name: "{tensor.name}" data_type: TYPE_{DTYPES[tensor.dtype].datatype} dims: [ {dims} ] }}'


def _parameters(values: dict[str, str]) -> str:
    items = [f'  {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in values.items()]
    return "parameters [\n" + ",\n".join(items) + "\n]\n"


def config_text(
    name: str, entry: ModelEntry, backend: str, window: Window, target: Target = "native", gpu: bool | None = None
) -> str:
    """``config.pbtxt`` of Triton model ``name`` serving ``entry`` on ``backend``; instances on the GPU where
    ``gpu`` (default: in the image)."""
    kind = artifact_kind(entry, backend)
    platform = target == "image" and kind == "onnx"
    lines = [f'name: "{name}"', 'platform: "onnxruntime_onnx"' if platform else 'backend: "python"']
    batched = batchable(entry)
    lines.append(f"max_batch_size: {entry.max_batch if batched else 0}")
    lines += ["input [", ",\n".join(_tensor(t, batched) for t in entry.inputs), "]"]
    lines += ["output [", ",\n".join(_tensor(t, batched) for t in entry.outputs), "]"]
    if batched:
        preferred = min(window.preferred_batch, entry.max_batch)
        lines.append(
            f"dynamic_batching {{ preferred_batch_size: [ {preferred} ] "
            f"max_queue_delay_microseconds: {window.max_queue_delay_us} }}"
        )
    device = "KIND_GPU" if (target == "image" if gpu is None else gpu) else "KIND_CPU"
    lines.append(f"instance_group [ {{ count: {window.instances} kind: {device} }} ]")
    text = "\n".join(lines) + "\n"
    if platform:
        threads = str(window.intra_op_threads)
        return text + _parameters({"intra_op_thread_count": threads, "inter_op_thread_count": "1"})
    return text + _parameters({"artifact": _FILE_NAMES[kind], "intra_op_threads": str(window.intra_op_threads)})


def write_repository(
    manifest: Manifest,
    artifacts: Path,
    out: Path,
    names: list[str],
    windows: dict[str, Window],
    target: Target = "native",
    gpu: bool | None = None,
) -> Path:
    """Write the repository of Triton models ``names`` into ``out`` (emptied first); returns ``out``.

    Every artifact is checked against the manifest's hash first (:meth:`Manifest.verify`),
    so Triton never loads a file the manifest does not vouch for. ``windows`` maps a
    Triton model name to its :class:`Window` (:func:`windows`).
    """
    available = triton_models(manifest)
    shutil.rmtree(out, ignore_errors=True)
    for name in names:
        model, backend = available[name]
        entry = manifest.model(model)
        kind = artifact_kind(entry, backend)
        source = manifest.verify(artifacts, model, kind)
        version = out / name / VERSION
        version.mkdir(parents=True)
        (out / name / "config.pbtxt").write_text(config_text(name, entry, backend, windows[name], target, gpu))
        (version / "model.json").write_text(entry.model_dump_json(indent=2) + "\n")
        if source.is_dir():
            shutil.copytree(source, version / _FILE_NAMES[kind])
        else:
            link_or_copy(source, version / _FILE_NAMES[kind])
        if kind != "onnx" or target == "native":
            shutil.copy2(MODEL_PY, version / "model.py")
            if target == "native":
                _compile(version / "model.py")
    return out


def _compile(source: Path) -> None:
    """Write ``model.py``'s bytecode now: the stub imports ``model.py`` before anything of ours runs in it, and
    would write ``__pycache__`` into the repository. Its interpreter is the one running this code (the
    launcher's ``LD_LIBRARY_PATH``), so the cache tag matches; unchecked, the file is never rewritten."""
    cache = importlib.util.cache_from_source(str(source))
    py_compile.compile(
        str(source), cfile=cache, doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
