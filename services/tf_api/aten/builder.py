"""Interpret ``graph.json`` (see :mod:`services.torch_api.aten_graph`) as a TF function and save it.

The graph runs inside a ``tf.function`` whose ``input_signature`` comes from the contract
(batch axis and the contract's dynamic axes ``None``), so every size torch kept symbolic
stays symbolic in TF. Weights become variables of a ``tf.Module`` (not graph constants), so
the SavedModel holds them once and a large model stays under the GraphDef's 2 GB limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from contract.manifest import ModelEntry
from services.jobs import StepError

from . import (
    comparison,
    convolution,
    creation,
    elementwise,
    indexing,
    matmul,
    normalization,
    reductions,
    shape,
    symbolic,
)
from .registry import DTYPES, LOWERINGS, Node

#: the families, imported for their registrations
FAMILIES = (
    comparison,
    convolution,
    creation,
    elementwise,
    indexing,
    matmul,
    normalization,
    reductions,
    shape,
    symbolic,
)
FORMAT = 1


def specs(entry: ModelEntry) -> list[tf.TensorSpec]:
    """The contract's inputs as TF specs: the batch axis and dynamic axes None."""
    return [
        tf.TensorSpec([None, *(None if d == -1 else d for d in t.shape)], DTYPES[t.dtype], name=t.name)
        for t in entry.inputs
    ]


def check(graph: dict[str, Any]) -> None:
    """Refuse, by name, the first op the table does not lower."""
    if graph.get("format") != FORMAT:
        raise StepError(f"graph.json has format {graph.get('format')!r}; this lowering reads format {FORMAT}")
    for node in graph["nodes"]:
        if node["target"] not in LOWERINGS:
            raise StepError(
                f"the ATen lowering has no {node['target']} (used by node {node['name']}); "
                f"it lowers {len(LOWERINGS)} ops, listed in services/tf_api/aten"
            )


class Program(tf.Module):  # type: ignore[misc]
    """The graph as a callable TF module: inputs in the contract's order, a dict of its outputs."""

    def __init__(self, graph: dict[str, Any], weights: dict[str, np.ndarray], entry: ModelEntry) -> None:
        super().__init__(name="aten_program")
        check(graph)
        self._ir = _Plain(graph)  # a plain holder: tf.Module would wrap a dict attribute for tracking
        self.entry = entry
        self.weights = {key: tf.Variable(weights[key], trainable=False, name=f"w{i}") for i, key in enumerate(weights)}

    @property
    def graph(self) -> dict[str, Any]:
        """The graph.json this program interprets."""
        return self._ir.value

    def __call__(self, *args: tf.Tensor) -> dict[str, tf.Tensor]:
        env: dict[str, Any] = {}
        for spec, value in zip(self.graph["inputs"], args, strict=True):
            want = DTYPES.get(spec.get("dtype", ""), value.dtype)
            env[spec["node"]] = value if value.dtype == want else tf.cast(value, want)
        for placeholder, key in self.graph["weights"].items():
            env[placeholder] = tf.convert_to_tensor(self.weights[key])
        for node in self.graph["nodes"]:
            info = Node(node["name"], node["target"], node.get("dtype"), node.get("shape"))
            lowering = LOWERINGS[node["target"]]
            try:
                with tf.name_scope(node["name"].lstrip("_") or "node"):
                    env[node["name"]] = lowering(
                        info, *_resolve(node["args"], env), **{k: _resolve(v, env) for k, v in node["kwargs"].items()}
                    )
            except StepError:
                raise
            except Exception as exc:
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise StepError(f"lowering {node['target']} (node {node['name']}) failed: {text}") from exc
        outputs = _resolve(self.graph["outputs"], env)
        return {
            t.name: tf.cast(v, DTYPES[t.dtype]) if v.dtype != DTYPES[t.dtype] else tf.identity(v)
            for t, v in zip(self.entry.outputs, outputs, strict=True)
        }


class _Plain:
    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value


def _resolve(arg: Any, env: dict[str, Any]) -> Any:
    if isinstance(arg, list):
        return [_resolve(a, env) for a in arg]
    if isinstance(arg, dict):
        if "node" in arg:
            return env[arg["node"]]
        if "float" in arg:
            return float(arg["float"])
        if "dtype" in arg:
            return DTYPES.get(arg["dtype"], arg["dtype"])
        if "other" in arg:
            return arg["other"]
        raise StepError(f"graph.json has an argument this lowering does not read: {arg}")
    return arg


def load(graph_dir: Path, entry: ModelEntry) -> Program:
    """The program in ``graph_dir`` (``graph.json`` + ``weights.npz``)."""
    graph = json.loads((graph_dir / "graph.json").read_text())
    with np.load(graph_dir / "weights.npz", allow_pickle=False) as data:
        weights = {k: data[k] for k in data.files}
    return Program(graph, weights, entry)


def function(program: Program) -> Any:
    """The program as a ``tf.function`` with the contract's input signature, traced once."""
    fn = tf.function(program.__call__, input_signature=specs(program.entry), autograph=False)
    fn.get_concrete_function()
    return fn


def save(program: Program, out: Path) -> Path:
    """A SavedModel with one signature, named as the contract says, taking and returning its names."""
    program.serve = function(program)
    tf.saved_model.save(program, str(out), signatures={program.entry.tf_signature: program.serve})
    return out
