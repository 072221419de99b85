"""Which SavedModel versions are loaded, their state, and finding one for a request.

Owns the ``ServerCore`` part of TF Serving: for each ``models.config`` entry, the
version directories its policy selects are loaded (``tf.saved_model.load``) and warmed
up once; a version that fails to load is kept in state ``END`` with its error, so the
status API shows it and the other versions and models keep serving. Lookup errors use
TF Serving's texts (``Servable not found for request: Specific(mlp, 7)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from services.tf_api.compat.errors import invalid, not_found
from services.tf_api.config import ModelEntry

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class TensorInfo:
    """One signature input or output: dtype name (``DT_FLOAT``), numpy dtype, shape with -1 for unknown."""

    dtype_name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Signature:
    """A servable's signature and the function that runs it on numpy arrays."""

    name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    run: RunFn


@dataclass
class Servable:
    """One loaded version of a model."""

    model: str
    version: int
    signatures: dict[str, Signature]
    signature_defs: Any  # SignatureDefMap proto, for GetModelMetadata
    handle: Any = None  # keeps the loaded object (and its variables) alive

    def signature(self, name: str) -> Signature:
        """The named signature (empty = ``serving_default``), or TF Serving's INVALID_ARGUMENT."""
        key = name or DEFAULT_SIGNATURE
        try:
            return self.signatures[key]
        except KeyError:
            raise invalid(f'Serving signature name: "{key}" not found in signature def') from None


@dataclass
class VersionState:
    """A version's state as the status API reports it."""

    version: int
    state: str  # AVAILABLE or END (failed to load)
    error: str = ""
    servable: Servable | None = None


@dataclass
class ModelState:
    """A configured model and its versions."""

    entry: ModelEntry
    versions: dict[int, VersionState] = field(default_factory=dict)

    def available(self) -> list[int]:
        return sorted((v for v, s in self.versions.items() if s.servable is not None), reverse=True)


def _tensor_info(proto: Any) -> TensorInfo:
    shape = tuple(-1 if proto.tensor_shape.unknown_rank else int(d.size) for d in proto.tensor_shape.dim)
    return TensorInfo(types_pb2.DataType.Name(proto.dtype), np.dtype(tf.as_dtype(proto.dtype).as_numpy_dtype), shape)


def _runner(function: Any, outputs: list[str]) -> RunFn:
    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = function(**{k: tf.convert_to_tensor(v) for k, v in inputs.items()})
        return {name: result[name].numpy() for name in outputs}

    return run


def load_servable(model: str, version: int, path: Path) -> Servable:
    """Load one SavedModel version directory and warm each signature up once."""
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    defs = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in saved.meta_graphs[0].signature_def.items():
        if not key.startswith("__"):  # __saved_model_init_op is not a serving signature
            defs.signature_def[key].CopyFrom(sig)
    loaded = tf.saved_model.load(str(path))
    signatures: dict[str, Signature] = {}
    for key, sig in defs.signature_def.items():
        inputs = {k: _tensor_info(v) for k, v in sig.inputs.items()}
        outputs = {k: _tensor_info(v) for k, v in sig.outputs.items()}
        signatures[key] = Signature(key, inputs, outputs, _runner(loaded.signatures[key], sorted(outputs)))
        if all(d >= 0 for info in inputs.values() for d in info.shape[1:]):
            signatures[key].run({k: np.zeros((1, *i.shape[1:]), i.dtype) for k, i in inputs.items()})
    return Servable(model, version, signatures, defs, loaded)


def _version_dirs(base: Path) -> list[int]:
    if not base.is_dir():
        return []
    return [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]


class ModelRegistry:
    """Every configured model's versions; the object the REST and gRPC adapters ask."""

    def __init__(self) -> None:
        self.models: dict[str, ModelState] = {}

    def load(self, entries: list[ModelEntry]) -> None:
        """Load what each entry's policy selects; failures are recorded, never raised."""
        for entry in entries:
            state = self.models[entry.name] = ModelState(entry)
            chosen = entry.policy.choose(_version_dirs(entry.base_path))
            if not chosen:
                log.error("model %s: no version directories under %s match its policy", entry.name, entry.base_path)
            for version in chosen:
                path = entry.base_path / str(version)
                try:
                    servable = load_servable(entry.name, version, path)
                except Exception as exc:  # noqa: BLE001 - any failure of one version must not stop the others
                    message = f"Failed to load SavedModel {path}: {type(exc).__name__}: {str(exc)[:500]}"
                    log.error("model %s version %d: %s", entry.name, version, message)
                    state.versions[version] = VersionState(version, "END", message)
                else:
                    log.info("model %s version %d: AVAILABLE (%s)", entry.name, version, path)
                    state.versions[version] = VersionState(version, "AVAILABLE", servable=servable)

    def available_count(self) -> int:
        """How many versions, over all models, can serve."""
        return sum(len(m.available()) for m in self.models.values())

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request names: latest available, a specific version, or a label's version."""
        model = self.models.get(name)
        if label is not None:
            if model is None or label not in model.entry.labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = model.entry.labels[label]
        if version is None:
            available = model.available() if model else []
            if not available:
                raise not_found(f"Servable not found for request: Latest({name})")
            version = available[0]
        state = model.versions.get(version) if model else None
        if state is None or state.servable is None:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return state.servable

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionState]:
        """Version states for the status API (newest first), or TF Serving's NOT_FOUND."""
        model = self.models.get(name)
        if model is None or not model.versions:
            raise not_found(f"Could not find any versions of model {name}")
        if label is not None:
            if label not in model.entry.labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = model.entry.labels[label]
        if version is None:
            return [model.versions[v] for v in sorted(model.versions, reverse=True)]
        if version not in model.versions:
            raise not_found(f"Could not find version {version} of model {name}")
        return [model.versions[version]]
