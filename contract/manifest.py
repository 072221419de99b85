"""The manifest: what every served model takes and returns, where its artifacts are, and why to trust them.

One pydantic model, :class:`Manifest`, read and written here and nowhere else. The
export steps write it (``make artifacts``, ``duoserve models add``); every consumer
reads it: the TorchServe handler (a copy of this package is packed into each ``.mar``),
the TF server, the gateway's validation, the load tests' payloads, the reliability
runs and the benchmarks. A built-in model and a user's model differ only in
``origin``/``source``; everything downstream learns a model from its entry.

Shapes are per instance (no batch axis); ``-1`` marks a dynamic axis whose largest
size is declared in ``max_shape`` (e.g. a sequence length). Tensors are named, several
per model, with dtypes float32, float16, int64, int32 or bool.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .artifacts import LAYOUT, MANIFEST_NAME, ArtifactError, artifact_path, sha256_path, write_json

FORMAT: Literal[2] = 2
DType = Literal["float32", "float16", "int64", "int32", "bool"]
DTYPES: tuple[str, ...] = ("float32", "float16", "int64", "int32", "bool")
#: Names travel as JSON keys, TF signature keys and ONNX graph names: keep them plain.
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
#: Model names also become TorchServe archive names and URL path segments.
MODEL_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Frozen):
    """One named input or output tensor, per instance (the batch axis is implied)."""

    name: Name
    dtype: DType = "float32"
    #: Per-instance shape; -1 marks a dynamic axis.
    shape: tuple[int, ...]
    #: Largest size of every axis (equal to ``shape`` on static axes); required when an axis is dynamic.
    max_shape: tuple[int, ...] | None = None
    #: Inclusive range real values fall in (token ids for integers); the payload generator draws from it.
    value_range: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TensorSpec:
        if any(d == 0 or d < -1 for d in self.shape):
            raise ValueError(f"tensor {self.name}: shape {list(self.shape)} has an axis that is neither -1 nor >= 1")
        dynamic = [i for i, d in enumerate(self.shape) if d == -1]
        if dynamic and self.max_shape is None:
            raise ValueError(f"tensor {self.name}: dynamic axes {dynamic} need a declared maximum (max_shape)")
        if self.max_shape is not None:
            if len(self.max_shape) != len(self.shape):
                raise ValueError(f"tensor {self.name}: max_shape {list(self.max_shape)} has another rank than shape")
            for axis, (d, m) in enumerate(zip(self.shape, self.max_shape, strict=True)):
                if (d == -1 and m < 1) or (d != -1 and m != d):
                    raise ValueError(
                        f"tensor {self.name}: max_shape[{axis}] = {m} does not fit shape[{axis}] = {d} "
                        "(a static axis repeats its size; a dynamic one declares a maximum >= 1)"
                    )
        if self.value_range is not None:
            low, high = self.value_range
            if not low <= high:
                raise ValueError(f"tensor {self.name}: value_range {low}..{high} is empty")
            if self.dtype == "bool":
                raise ValueError(f"tensor {self.name}: a bool tensor takes no value_range")
            if self.dtype in ("int64", "int32") and (low != int(low) or high != int(high)):
                raise ValueError(f"tensor {self.name}: an integer tensor's value_range must be whole numbers")
        return self

    @property
    def dynamic(self) -> bool:
        return -1 in self.shape

    @property
    def largest(self) -> tuple[int, ...]:
        """The largest per-instance shape this tensor takes."""
        return self.max_shape if self.max_shape is not None else self.shape

    def fits(self, shape: tuple[int, ...] | list[int]) -> bool:
        """Whether a per-instance ``shape`` is one this tensor takes."""
        return len(shape) == len(self.shape) and all(
            (1 <= got <= most) if want == -1 else got == want
            for got, want, most in zip(shape, self.shape, self.largest, strict=True)
        )

    def shape_text(self) -> str:
        """``[8, 8]``, or ``[≤128]`` for a dynamic axis."""
        return (
            "[" + ", ".join(f"≤{m}" if d == -1 else str(d) for d, m in zip(self.shape, self.largest, strict=True)) + "]"
        )


class ArtifactRecord(_Frozen):
    """One built artifact: where it is, its hash, and the recipe (sources and inputs) that made it."""

    path: str
    sha256: str
    recipe: str
    #: Source file (repository-relative) -> its sha256, so a rebuild can say which one changed.
    sources: dict[str, str] = Field(default_factory=dict)


class OutputParity(_Frozen):
    """How far one output of one artifact is from the source model's own runtime."""

    max_abs: float
    max_rel: float


class ParityRecord(_Frozen):
    """The parity check of one produced artifact against the source runtime."""

    against: str
    tolerance_abs: float
    tolerance_rel: float | None = None
    batches: tuple[int, ...]
    samples: int = 0
    outputs: dict[str, OutputParity]

    @property
    def max_abs(self) -> float:
        return max((o.max_abs for o in self.outputs.values()), default=0.0)


class InProcessLatency(_Frozen):
    """One artifact run in its own runtime, in process, with no server: median milliseconds per call."""

    runtime: str
    batch_1_ms: float
    max_batch: int
    max_batch_ms: float
    repeats: int


class SourceInfo(_Frozen):
    """Where a user's model came from (built-in models have none)."""

    format: Literal["onnx", "torchscript", "torch_export", "savedmodel", "keras", "pair"]
    files: tuple[str, ...]
    sha256: str
    #: The framework whose runtime the parity gate treats as the truth.
    reference: Literal["onnxruntime", "torchscript", "torch_export", "tensorflow"]


class ModelEntry(BaseModel):
    """Everything known about one served model."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    description: str = ""
    origin: Literal["builtin", "user"] = "builtin"
    source: SourceInfo | None = None
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    #: Most instances one request may carry.
    max_batch: int = Field(ge=1)
    tf_signature: str = "serving_default"
    tf_versions: tuple[int, ...] = (1,)
    metrics: dict[str, float] = Field(default_factory=dict)
    parity: dict[str, ParityRecord] = Field(default_factory=dict)
    artifacts: dict[str, ArtifactRecord] = Field(default_factory=dict)
    #: Artifact kind -> the converter that made it from the source (a user's model).
    made_by: dict[str, str] = Field(default_factory=dict)
    #: ``source`` and each made artifact kind -> its in-process latency (``models add`` measures it), so a
    #: converter's slow artifact is not read as a slow framework.
    latency: dict[str, InProcessLatency] = Field(default_factory=dict)
    #: Optional artifacts that could not be made -> why (only ``onnx``: then there is no ONNX Runtime
    #: archive and no ``torch_ort`` backend; torch and tf are still compared).
    missing: dict[Literal["onnx"], str] = Field(default_factory=dict)

    @field_validator("inputs", "outputs")
    @classmethod
    def _unique(cls, tensors: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
        names = [t.name for t in tensors]
        if len(set(names)) != len(names):
            raise ValueError(f"tensor names repeat: {names}")
        return tensors

    def input(self, name: str) -> TensorSpec:
        """The input called ``name``."""
        for tensor in self.inputs:
            if tensor.name == name:
                return tensor
        raise KeyError(f"model {self.name} has no input {name!r}; inputs: {', '.join(self.input_names)}")

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def backends(self) -> list[str]:
        """The stacks that serve this model: the ONNX Runtime ones (``torch_ort``, ``triton_ort``) only where an
        ONNX artifact exists; ``tf`` last."""
        ort = "onnx" not in self.missing
        return ["torch", *(["torch_ort"] if ort else []), "triton", *(["triton_ort"] if ort else []), "tf"]

    def slowdown(self, kind: str) -> float | None:
        """How many times slower ``kind`` ran in process than the source, at the max batch (None: unmeasured)."""
        mine, source = self.latency.get(kind), self.latency.get("source")
        if mine is None or source is None or source.max_batch_ms <= 0:
            return None
        return mine.max_batch_ms / source.max_batch_ms

    def contract(self) -> dict[str, Any]:
        """The part of the entry that defines what the model takes and returns (a recipe input)."""
        return self.model_dump(mode="json", include={"name", "inputs", "outputs", "max_batch", "tf_signature"})

    def public(self) -> dict[str, Any]:
        """What the gateway shows of a model."""
        return {
            "description": self.description,
            "origin": self.origin,
            "inputs": [t.model_dump(mode="json", exclude_none=True) for t in self.inputs],
            "outputs": [t.model_dump(mode="json", exclude_none=True) for t in self.outputs],
            "max_batch": self.max_batch,
        }


class Manifest(BaseModel):
    """``artifacts/manifest.json``: every model by name."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[2] = FORMAT
    updated: str | None = None
    models: dict[str, ModelEntry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names_match(self) -> Manifest:
        for key, entry in self.models.items():
            if key != entry.name:
                raise ValueError(f"models[{key!r}] is named {entry.name!r}")
        return self

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def model(self, name: str) -> ModelEntry:
        """The entry of ``name``; ``KeyError`` names the models that exist."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(self.models) or "none"
            raise KeyError(f"model {name!r} is not in the manifest; known: {known}") from None

    @classmethod
    def read(cls, path: Path, *, missing_ok: bool = False) -> Manifest:
        """Read a manifest file; :class:`ArtifactError` names the file when it is missing or not valid.

        ``missing_ok`` gives an empty manifest for a missing, unreadable or older-format file
        (the build starts over from it).
        """
        if not path.exists():
            if missing_ok:
                return cls()
            raise ArtifactError(f"{path}: missing; run `make artifacts`")
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("format") != FORMAT:
                raise ArtifactError(f"{path}: format {data.get('format')!r}, not {FORMAT}; run `make artifacts`")
            return cls.model_validate(data)
        except (OSError, ValueError, ArtifactError) as exc:
            if missing_ok:
                return cls()
            if isinstance(exc, ArtifactError):
                raise
            reason = _validation_text(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ArtifactError(f"{path}: not a valid manifest ({reason}); run `make artifacts`") from None

    def write(self, path: Path) -> None:
        """Write atomically, stamped with the time."""
        self.updated = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_json(path, self.model_dump(mode="json", exclude_none=True))

    def verify(self, root: Path, model: str, kind: str) -> Path:
        """The path of a trusted artifact, or :class:`ArtifactError` naming the file.

        Trusted means: listed in the manifest, present, and its sha256 equals the manifest's.
        """
        path = artifact_path(root, model, kind)
        entry = self.models.get(model)
        record = entry.artifacts.get(kind) if entry else None
        if record is None:
            raise ArtifactError(f"{path}: not listed in {root / MANIFEST_NAME}; run `make artifacts`")
        if not path.exists():
            raise ArtifactError(f"{path}: missing; run `make artifacts`")
        actual = sha256_path(path)
        if actual != record.sha256:
            raise ArtifactError(
                f"{path}: sha256 {actual[:12]}… disagrees with the manifest's {record.sha256[:12]}…; "
                "the file is corrupt or stale; run `make artifacts`"
            )
        return path


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(parts)


def read_manifest(root: Path, *, missing_ok: bool = False) -> Manifest:
    """``root/manifest.json`` (see :meth:`Manifest.read`)."""
    return Manifest.read(root / MANIFEST_NAME, missing_ok=missing_ok)


__all__ = [
    "DTYPES",
    "FORMAT",
    "LAYOUT",
    "ArtifactRecord",
    "DType",
    "Manifest",
    "ModelEntry",
    "OutputParity",
    "ParityRecord",
    "SourceInfo",
    "TensorSpec",
    "read_manifest",
]
