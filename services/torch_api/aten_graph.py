"""A torch.export program as a neutral graph on disk: core ATen nodes in ``graph.json``, tensors in ``weights.npz``.

Task ``to_graph`` (``{"op": "to_graph", "path": "<.pt2>", "contract": "<ModelEntry JSON>", "out": "<dir>"}``):
``torch.export.load`` -> ``run_decompositions()`` (the core ATen opset) -> the graph below.
:mod:`services.tf_api.aten` reads it in the TF process and builds a SavedModel from it; the
two halves share nothing but these two files (torch and TensorFlow never meet in a process).

The format (``graph.json``, ``"format": 1``), documented here rather than as a pydantic model
in ``contract/`` because exactly two modules read or write it, both in ``services/``, and an
arg is a recursive union that a schema would only restate:

- ``inputs``: one per contract input, in the contract's order: ``{"name": <contract name>,
  "node": <placeholder>, "dtype": "float32", "shape": [null, 32]}`` (``null``: a symbolic axis);
- ``weights``: placeholder -> key in ``weights.npz`` (parameters, buffers, lifted constants);
- ``nodes``: in execution order, ``{"name", "target", "args", "kwargs", "dtype"?, "shape"?}``;
  ``target`` is the overload's name (``aten.add.Tensor``, ``aten.sym_size.int``, and for
  arithmetic on SymInts the Python operator: ``_operator.mul``, ``_operator.floordiv``);
  ``dtype``/``shape`` describe the node's value (a tensor; a list of them for a tuple);
- ``outputs``: one arg per contract output, in the contract's order.

An arg is JSON: a number, string, bool, null or list as itself, and tagged objects for the
rest: ``{"node": name}`` (another node's value), ``{"dtype": "float32"}``,
``{"float": "inf" | "-inf" | "nan"}``, ``{"other": "<repr>"}`` (a device, layout or memory
format: lowerings ignore them).
"""

from __future__ import annotations

import json
import math
import operator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contract.manifest import ModelEntry
from services.jobs import StepError, Task

FORMAT = 1


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _arg(value: Any) -> Any:
    if isinstance(value, torch.fx.Node):
        return {"node": value.name}
    if isinstance(value, (list, tuple)):
        return [_arg(v) for v in value]
    if isinstance(value, dict):
        raise StepError(f"the ATen graph has a dict argument {value!r}, which the lowering does not take")
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": str(value)}
    if isinstance(value, torch.dtype):
        return {"dtype": _dtype_name(value)}
    if isinstance(value, (torch.device, torch.layout, torch.memory_format)):
        return {"other": str(value)}
    raise StepError(f"the ATen graph has an argument of type {type(value).__name__} ({value!r})")


def _meta(val: Any) -> dict[str, Any]:
    if isinstance(val, torch.Tensor):
        return {"dtype": _dtype_name(val.dtype), "shape": [d if isinstance(d, int) else None for d in val.shape]}
    if isinstance(val, (list, tuple)) and all(isinstance(v, torch.Tensor) or v is None for v in val):
        parts = [_meta(v) if v is not None else {} for v in val]
        return {"dtype": [p.get("dtype") for p in parts], "shape": [p.get("shape") for p in parts]}
    return {}


def _target(node: torch.fx.Node) -> str:
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return f"{target.namespace}.{target._schema.name.split('::')[1]}.{target._overloadname}"
    if target in vars(operator).values():
        return f"_operator.{target.__name__}"  # type: ignore[union-attr]
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__name__', str(target))}"


def export_graph(program: torch.export.ExportedProgram, entry: ModelEntry, out: Path) -> dict[str, Any]:
    """Write ``graph.json`` and ``weights.npz`` of ``program`` (decomposed to core ATen) into ``out``."""
    program = program.run_decompositions()
    signature = program.graph_signature
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    user = [s.arg.name for s in signature.input_specs if s.kind.name == "USER_INPUT"]
    if len(user) != len(entry.inputs):
        raise StepError(f"the program takes {len(user)} inputs, the contract names {len(entry.inputs)}")
    inputs = []
    for tensor, name in zip(entry.inputs, user, strict=True):
        inputs.append({"name": tensor.name, "node": name, **_meta(placeholders[name].meta.get("val"))})
    weights: dict[str, np.ndarray] = {}
    state = {**program.state_dict, **program.constants}
    for spec in signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            continue
        value = state.get(spec.target) if spec.target is not None else None
        if not isinstance(value, torch.Tensor):
            raise StepError(f"the program's input {spec.arg.name} ({spec.kind.name}) is not a tensor")
        weights[spec.arg.name] = value.detach().cpu().contiguous().numpy()
    nodes = []
    outputs: list[Any] = []
    for node in program.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            values = list(node.args[0])
            user_out = [v for v, s in zip(values, signature.output_specs, strict=True) if s.kind.name == "USER_OUTPUT"]
            outputs = [_arg(v) for v in user_out]
            continue
        if node.op != "call_function":
            raise StepError(f"the ATen graph has a {node.op} node ({node.name}), which the lowering does not take")
        nodes.append(
            {
                "name": node.name,
                "target": _target(node),
                "args": _arg(node.args),
                "kwargs": {k: _arg(v) for k, v in node.kwargs.items()},
                **_meta(node.meta.get("val")),
            }
        )
    if len(outputs) != len(entry.outputs):
        raise StepError(f"the program returns {len(outputs)} outputs, the contract names {len(entry.outputs)}")
    out.mkdir(parents=True, exist_ok=True)
    graph = {"format": FORMAT, "inputs": inputs, "weights": {k: k for k in weights}, "nodes": nodes, "outputs": outputs}
    (out / "graph.json").write_text(json.dumps(graph, indent=1))
    np.savez(out / "weights.npz", **weights)  # type: ignore[arg-type]
    targets = sorted({n["target"] for n in nodes})
    return {"graph": str(out), "nodes": len(nodes), "weights": len(weights), "targets": targets}


def to_graph(task: Task) -> dict[str, Any]:
    """The ``to_graph`` task: a ``.pt2`` file to ``graph.json`` + ``weights.npz`` in ``out``."""
    entry = ModelEntry.model_validate_json(task["contract"])
    try:
        program = torch.export.load(task["path"])
    except Exception as exc:  # noqa: BLE001 - any failure: not a program this torch loads
        raise StepError(
            f"{Path(task['path']).name} is not a torch.export program torch {torch.__version__} loads: {exc}"
        ) from None
    return export_graph(program, entry, Path(task["out"]))
