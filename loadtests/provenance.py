"""Where each target's artifact came from, and what its converter cost in process.

A figure of "torch" for a user's model is a figure of whatever artifact duoserve made for
TorchServe from the user's source: a ``.keras`` source becomes Keras 3 on its torch backend,
traced to TorchScript. A reader must see that next to the figure, and how much slower the
artifact ran in process than the source on its own runtime (``ModelEntry.slowdown``, measured
by ``duoserve models add``), before reading a gap as one between frameworks. Everything here
comes from the manifest entry (:mod:`contract.manifest`), read once at the start of a run and
written into ``results.json``, so a report rebuilt later says the same.
"""

from __future__ import annotations

from typing import Any

from contract.manifest import ModelEntry
from loadtests.targets import TARGETS

#: Artifact kinds each backend serves, in the order looked for in the entry's artifacts.
ARTIFACT_OF: dict[str, tuple[str, ...]] = {"torch": ("torchscript", "torch_export"), "torch_ort": ("onnx",),
                                           "triton": ("torchscript", "torch_export"), "triton_ort": ("onnx",),
                                           "tf": ("tf",)}  # fmt: skip
#: The package whose runtime runs each backend's artifact (its version is the environment's).
RUNTIME_OF = {"torch": "torch", "torch_ort": "onnxruntime", "triton": "torch", "triton_ort": "onnxruntime",
              "tf": "tensorflow"}  # fmt: skip
#: A source format that is itself the artifact a backend serves.
SOURCE_KIND = {"torchscript": "torchscript", "torch_export": "torch_export", "onnx": "onnx", "savedmodel": "tf"}
#: Times slower in process than the source beyond which a gap may be the converter's, not the framework's.
CONVERSION_GAP = 1.5


def artifact_kind(entry: ModelEntry, backend: str) -> str | None:
    """The artifact kind ``backend`` serves for ``entry`` (None when it has none)."""
    return next((k for k in ARTIFACT_OF.get(backend, ()) if k in entry.artifacts), None)


def describe(entry: ModelEntry, versions: dict[str, str | None]) -> dict[str, dict[str, Any]]:
    """Per backend serving ``entry``: its artifact, who made it from what, the runtime's version, and the
    in-process latencies and slowdown against the source (absent when unmeasured)."""
    found: dict[str, dict[str, Any]] = {}
    source = entry.source
    for backend in entry.backends:
        kind = artifact_kind(entry, backend)
        if kind is None:
            continue
        is_source = source is not None and SOURCE_KIND.get(source.format) == kind
        made_by = "the source itself" if is_source else entry.made_by.get(kind)
        if entry.origin == "builtin":
            made_by = "duoserve's export of the built-in model (weights made in PyTorch)"
        latency = entry.latency.get(kind)
        found[backend] = {
            "artifact": kind,
            "made_by": made_by,
            "source": source.model_dump(mode="json", include={"format", "files", "reference"}) if source else None,
            "runtime": RUNTIME_OF[backend],
            "runtime_version": versions.get(RUNTIME_OF[backend]),
            "latency": latency.model_dump(mode="json") if latency else None,
            "source_latency": entry.latency["source"].model_dump(mode="json") if "source" in entry.latency else None,
            "slowdown": entry.slowdown(kind),
        }
    return found


def conversion_notes(provenance: dict[str, dict[str, Any]], targets: list[str]) -> list[str]:
    """One sentence per target whose artifact ran more than :data:`CONVERSION_GAP` × slower in process than the
    source: the gap may belong to the conversion. Nothing when the latencies were not measured."""
    notes = []
    for target in targets:
        info = provenance.get(TARGETS[target].backend) if target in TARGETS else None
        slowdown = (info or {}).get("slowdown")
        if info is None or slowdown is None or slowdown <= CONVERSION_GAP:
            continue
        source = info.get("source") or {}
        notes.append(
            f"{target}'s artifact ({info['artifact']}, made by {info['made_by'] or 'an unrecorded converter'}) ran "
            f"{slowdown:.2f}× slower in process than its source ({source.get('format', 'unrecorded')}) on "
            f"{source.get('reference', 'its own runtime')}, at batch {info['latency']['max_batch']}: the gap may "
            "belong to the conversion and not to the framework"
        )
    return notes
