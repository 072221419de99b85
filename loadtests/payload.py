"""Request bodies: one seeded generator, so every target gets byte-identical requests.

A body depends only on (the model's contract, its sample, batch size, seed, index): the
same inputs give the same bytes in every process, on every worker, for every target.
Tensors, shapes, dtypes and value ranges (token id ranges for integer inputs) come from
the manifest (:func:`contract.tensors.sample_inputs`), never from code; a model added with
``--sample`` is loaded with its real inputs instead, rows taken in turn. A model with
several inputs gets TF Serving's row format with one object per instance.

The same instances can also be written as the Open Inference Protocol's requests
(:func:`encoded`): JSON tensors, or the binary tensor data layout; so protocols are
compared on the very same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from contract.artifacts import artifact_path, default_root
from contract.manifest import ModelEntry, read_manifest
from contract.oip import HEADER_LENGTH, datatype, rest_request
from contract.tensors import NUMPY_DTYPES, request_body, sample_inputs

#: ``v1``: the gateway's and TF Serving's JSON; ``v2``: the Open Inference Protocol's JSON tensors;
#: ``v2_binary``: its binary tensor data extension.
Encoding = Literal["v1", "v2", "v2_binary"]
#: A request body and the headers it needs (its content type; a binary body's JSON header length).
Encoded = tuple[bytes, dict[str, str]]

#: Decimals kept per float value: short bodies, and float32 holds them exactly enough.
DECIMALS = 3


def load_model(model: str, root: Path | None = None) -> ModelEntry:
    """The manifest entry of ``model`` (default root: the artifacts directory); KeyError lists the known ones."""
    return read_manifest(root or default_root()).model(model)


Sample = dict[str, np.ndarray]


def load_sample(entry: ModelEntry, root: Path | None = None) -> Sample | None:
    """The real inputs a model was added with (``--sample``), or None."""
    if "sample" not in entry.artifacts:
        return None
    with np.load(artifact_path(root or default_root(), entry.name, "sample"), allow_pickle=False) as data:
        return {name: data[name] for name in entry.input_names}


def instances(entry: ModelEntry, batch: int, seed: int, index: int = 0, sample: Sample | None = None) -> Sample:
    """``batch`` instances of every input (the sample's rows in turn, if any), floats rounded to :data:`DECIMALS`."""
    if not 1 <= batch <= entry.max_batch:
        raise ValueError(f"batch {batch} outside 1..{entry.max_batch} for model {entry.name}")
    if sample is not None:
        rows = len(next(iter(sample.values())))
        take = [(index * batch + i) % rows for i in range(batch)]
        return {name: value[take] for name, value in sample.items()}
    arrays = sample_inputs(entry, batch, seed, index)
    return {name: np.round(a.astype(np.float64), DECIMALS) if a.dtype.kind == "f" else a for name, a in arrays.items()}


def body(entry: ModelEntry, batch: int, seed: int, index: int = 0, sample: Sample | None = None) -> bytes:
    """The JSON request body (compact, deterministic bytes)."""
    return json.dumps(request_body(instances(entry, batch, seed, index, sample)), separators=(",", ":")).encode()


def pool(entry: ModelEntry, batch: int, seed: int, size: int, sample: Sample | None = None) -> list[bytes]:
    """``size`` distinct bodies; users cycle through them so caches cannot flatter a server."""
    return [body(entry, batch, seed, i, sample) for i in range(size)]


def encoded(
    entry: ModelEntry, batch: int, seed: int, index: int = 0, sample: Sample | None = None, encoding: Encoding = "v1"
) -> Encoded:
    """The body of :func:`body`'s instances in ``encoding``, with its headers."""
    if encoding == "v1":
        return body(entry, batch, seed, index, sample), {"Content-Type": "application/json"}
    arrays = {
        t.name: np.asarray(a, dtype=NUMPY_DTYPES[t.dtype])
        for t, a in zip(entry.inputs, instances(entry, batch, seed, index, sample).values(), strict=True)
    }
    if encoding == "v2_binary":
        raw, length = rest_request(arrays, entry)
        return raw, {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(length)}
    tensors = [
        {"name": t.name, "shape": list(arrays[t.name].shape), "datatype": datatype(t), "data": _flat(arrays[t.name])}
        for t in entry.inputs
    ]
    return json.dumps({"inputs": tensors}, separators=(",", ":")).encode(), {"Content-Type": "application/json"}


def _flat(array: np.ndarray) -> list[object]:
    """The elements in row-major order; floats rounded like :func:`body`'s, so both encodings carry equal numbers."""
    flat = np.round(array.astype(np.float64), DECIMALS) if array.dtype.kind == "f" else array
    return list(flat.ravel().tolist())


def encoded_pool(
    entry: ModelEntry, batch: int, seed: int, size: int, sample: Sample | None = None, encoding: Encoding = "v1"
) -> list[Encoded]:
    """:func:`pool` in ``encoding``: the same instances, body for body."""
    return [encoded(entry, batch, seed, i, sample, encoding) for i in range(size)]
