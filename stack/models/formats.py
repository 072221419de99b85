"""The source formats ``duoserve models add`` takes: one object each, in one registry.

A :class:`SourceFormat` says how its files are recognised, which runtime is the parity
reference for it (and runs it), how its outputs are named, and how every other artifact is
made from it. Adding a format is one more entry in :data:`FORMATS`; nothing else switches
on a format's name.

=====================  ============  ===================================================
source                 reference     produced (the first converter whose artifact
                                     passes the parity gate; the next one otherwise)
=====================  ============  ===================================================
ONNX file              ONNX Runtime  torch: onnx2torch -> TorchScript / torch.export;
                                     TF: onnx2tf
TorchScript ``.pt``    torch         ONNX: torch.onnx; TF: onnx2tf on that ONNX, else
                                     the ATen lowering of onnx2torch's program
torch.export ``.pt2``  torch         ONNX: torch.onnx (dynamo); TF: the ATen lowering
                                     (services.tf_api.aten), else onnx2tf
SavedModel directory   TensorFlow    ONNX: tf2onnx; torch: onnx2torch on that ONNX
``.keras`` file        Keras (TF)    TF: Keras' export; torch: Keras 3 on torch;
                                     ONNX: torch.onnx on that torch artifact, else
                                     the dynamo exporter on its torch.export program,
                                     else tf2onnx; optional
=====================  ============  ===================================================

"Optional": when no converter writes a faithful ONNX file, torch and tf are still registered
and compared; the manifest says why ONNX is missing (``ModelEntry.missing``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from contract.manifest import ModelEntry

from . import converters
from .conversion import Conversion, Produced
from .spec import RefusedError

#: Largest source accepted: ONNX's protobuf cannot hold more than 2 GiB in one file, and a model of
#: that size takes minutes per conversion on a CPU host.
MAX_SOURCE_BYTES = 2 * 1024**3

Producer = Callable[[Conversion, ModelEntry, Path], Produced]


@dataclass(frozen=True)
class SourceFormat:
    """One kind of model file: how it is recognised, run and converted."""

    key: Literal["onnx", "torchscript", "torch_export", "savedmodel", "keras"]
    #: What the user reads ("ONNX Runtime", "TorchScript", ...).
    runtime: str
    #: The step worker that inspects and runs it (:data:`stack.models.steps.WORKERS`).
    worker: str
    #: ``SourceInfo.reference`` in the manifest.
    reference: Literal["onnxruntime", "torchscript", "torch_export", "tensorflow"]
    #: File suffixes (lower case); empty for a directory format.
    suffixes: tuple[str, ...]
    #: How output names are taken: as declared (and checked), made servable, or by position.
    outputs: Literal["declared", "sanitized", "positional"]
    #: Makes every other artifact; kind -> path (None: the source itself is that artifact).
    produce: Producer
    #: Whether its files are zip archives (checked, so a renamed file is refused before any converter runs).
    zipped: bool = False

    def recognises(self, path: Path) -> bool:
        if not self.suffixes:
            return path.is_dir() and (path / "saved_model.pb").exists()
        return path.is_file() and path.suffix.lower() in self.suffixes


def _one(kind: str, make: Callable[[], Path]) -> Callable[[], Produced]:
    return lambda: {kind: make()}


def _tf_for_torch(conv: Conversion, entry: ModelEntry, key: str, source: Path, onnx: Path) -> Produced:
    """A torch source's TF side: the ``--pair``'s if given, else the first converter whose SavedModel is faithful.

    A torch.export program goes through the ATen lowering first (onnx2tf fails on transformers
    with a dynamic batch), onnx2tf second. A TorchScript file tries onnx2tf first, then the
    lowering of the program onnx2torch makes from its ONNX (torch.export takes no TorchScript).
    """
    if conv.pair_tf is not None:
        fmt, path = conv.pair_tf
        pair = _one("tf", lambda: converters.tf_from_pair(conv, entry, fmt, path))
        return converters.first_faithful(conv, "TF", ("--pair", pair))
    onnx2tf = ("onnx2tf", _one("tf", lambda: converters.tf_from_onnx(conv, entry, onnx)))
    if key == "torch_export":
        lowering = _one("tf", lambda: converters.tf_from_torch_export(conv, entry, source))
        return converters.first_faithful(conv, "TF", ("ATen lowering", lowering), onnx2tf)
    lowered = _one(
        "tf", lambda: converters.tf_from_torch_export(conv, entry, converters.program_from_onnx(conv, entry, onnx))
    )
    return converters.first_faithful(conv, "TF", onnx2tf, ("onnx2torch + ATen lowering", lowered))


def _from_onnx(conv: Conversion, entry: ModelEntry, source: Path) -> Produced:
    torch = converters.first_faithful(
        conv, "torch", ("onnx2torch", lambda: converters.torch_from_onnx(conv, entry, source))
    )
    tf = converters.first_faithful(
        conv, "TF", ("onnx2tf", _one("tf", lambda: converters.tf_from_onnx(conv, entry, source)))
    )
    return {"onnx": None, **torch, **tf}


def _from_torch(conv: Conversion, entry: ModelEntry, source: Path, key: str) -> Produced:
    onnx = converters.first_faithful(
        conv, "ONNX", ("torch.onnx", _one("onnx", lambda: converters.onnx_from_torch(conv, entry, key, source)))
    )
    path = onnx["onnx"]
    assert path is not None
    return {key: None, **onnx, **_tf_for_torch(conv, entry, key, source, path)}


def _from_torchscript(conv: Conversion, entry: ModelEntry, source: Path) -> Produced:
    return _from_torch(conv, entry, source, "torchscript")


def _from_torch_export(conv: Conversion, entry: ModelEntry, source: Path) -> Produced:
    return _from_torch(conv, entry, source, "torch_export")


def _from_savedmodel(conv: Conversion, entry: ModelEntry, source: Path) -> Produced:
    onnx = converters.first_faithful(  # onnx2torch needs it: not optional
        conv, "ONNX", ("tf2onnx", _one("onnx", lambda: converters.onnx_from_savedmodel(conv, entry, source)))
    )
    path = onnx["onnx"]
    assert path is not None
    torch = converters.first_faithful(
        conv, "torch", ("onnx2torch", lambda: converters.torch_from_onnx(conv, entry, path))
    )
    return {"tf": None, **onnx, **torch}


def _from_keras(conv: Conversion, entry: ModelEntry, source: Path) -> Produced:
    tf = converters.first_faithful(
        conv, "TF", ("Keras export", _one("tf", lambda: converters.savedmodel_from_keras(conv, entry, source)))
    )
    torch = converters.first_faithful(
        conv, "torch", ("Keras 3 on torch", lambda: converters.torch_from_keras(conv, entry, source))
    )
    ((torch_kind, torch_path),) = torch.items()
    saved = tf["tf"]
    assert torch_path is not None
    assert saved is not None
    onnx = converters.first_faithful(
        conv,
        "ONNX",
        ("torch.onnx", _one("onnx", lambda: converters.onnx_from_torch(conv, entry, torch_kind, torch_path))),
        ("torch.onnx (dynamo)", _one("onnx", lambda: converters.onnx_from_keras_program(conv, entry, source))),
        ("tf2onnx", _one("onnx", lambda: converters.onnx_from_savedmodel(conv, entry, saved))),
        optional=True,
    )
    return {**tf, **torch, **onnx}


FORMATS: dict[str, SourceFormat] = {
    f.key: f
    for f in (
        SourceFormat("onnx", "ONNX Runtime", "onnx", "onnxruntime", (".onnx",), "declared", _from_onnx),
        SourceFormat("torchscript", "TorchScript", "torch", "torchscript", (".pt", ".pth"), "positional",
                     _from_torchscript, zipped=True),
        SourceFormat("torch_export", "torch.export", "torch", "torch_export", (".pt2",), "positional",
                     _from_torch_export, zipped=True),
        SourceFormat("savedmodel", "TensorFlow", "tf", "tensorflow", (), "declared", _from_savedmodel),
        SourceFormat("keras", "Keras", "tf", "tensorflow", (".keras",), "sanitized", _from_keras, zipped=True),
    )
}  # fmt: skip
#: Artifact kind -> the format its runtime reads it as (the parity gate runs each artifact so).
ARTIFACT_FORMAT: dict[str, SourceFormat] = {
    "onnx": FORMATS["onnx"],
    "torchscript": FORMATS["torchscript"],
    "torch_export": FORMATS["torch_export"],
    "tf": FORMATS["savedmodel"],
}


def detect(path: Path) -> SourceFormat:
    """The format of a model file or directory, from what it is; RefusedError for anything else."""
    if not path.exists():
        raise RefusedError(f"{path}: no such file or directory")
    if path.is_dir():
        if FORMATS["savedmodel"].recognises(path):
            return FORMATS["savedmodel"]
        raise RefusedError(f"{path}: a directory that is not a SavedModel (no saved_model.pb in it)")
    size = path.stat().st_size
    if size > MAX_SOURCE_BYTES:
        raise RefusedError(f"{path}: {size / 1024**3:.1f} GiB is over duoserve's limit of 2 GiB per model file")
    if size == 0:
        raise RefusedError(f"{path}: the file is empty, not a model")
    found = next((f for f in FORMATS.values() if f.recognises(path)), None)
    if found is None:
        raise RefusedError(
            f"{path}: not a model duoserve takes (an .onnx, .pt TorchScript, .pt2 torch.export or .keras file, "
            "or a SavedModel directory)"
        )
    with path.open("rb") as handle:
        zipped = handle.read(4) == b"PK\x03\x04"
    if found.zipped and not zipped:
        raise RefusedError(f"{path}: not a {found.key} model (it is not the zip archive such a model is)")
    if not found.zipped and zipped:
        raise RefusedError(f"{path}: not an ONNX model (it is a zip archive)")
    return found
