"""ONNX side of ``duoserve models add``: read, check, rename and run ONNX files (onnx and ONNX Runtime only).

Runs as ``python -m stack.models.onnx_step JOB.json`` (see :mod:`services.jobs`). Tasks:

- ``inspect``: inputs (initializers excluded) and outputs with dtypes and shapes, a named
  dimension (``dim_param``) or a missing one being dynamic;
- ``check``: ``onnx.checker`` on the file (a truncated or foreign file is refused here);
- ``normalize``: one self-contained file (external data folded in), graph inputs and outputs
  given the contract's names (the graph is not touched: only the names of its edges change,
  so request JSON keys equal the contract's);
- ``run``: ONNX Runtime's outputs on each case (the reference of an ONNX source, and the
  check of every ONNX artifact: what TorchServe's ``_ort`` archive runs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from services.jobs import StepError, Task, load_cases, main, save_cases, timed_cases


def _load(path: str) -> Any:
    import onnx

    try:
        return onnx.load(path)
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
        raise StepError(f"{Path(path).name} is not an ONNX model onnx can read: {str(exc).splitlines()[0]}") from None


def _dims(value_info: Any) -> list[int] | None:
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type" or not value_info.type.tensor_type.HasField("shape"):
        return None
    return [int(d.dim_value) if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim]


def _dtype(value_info: Any) -> str:
    import onnx

    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type":
        return kind or "unknown"
    return (
        str(onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type))
        if value_info.type.tensor_type.elem_type != 8
        else "string"
    )


def inspect(task: Task) -> dict[str, Any]:
    model = _load(task["path"])
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [
        {"name": i.name, "dtype": _dtype(i), "shape": _dims(i)} for i in graph.input if i.name not in initializers
    ]
    outputs = [{"name": o.name, "dtype": _dtype(o), "shape": _dims(o)} for o in graph.output]
    ops = sorted({n.op_type for n in graph.node})
    return {
        "inputs": inputs,
        "outputs": outputs,
        "ops": ops,
        "opset": max((o.version for o in model.opset_import), default=0),
    }


def check(task: Task) -> dict[str, Any]:
    import onnx

    _load(task["path"])
    try:
        onnx.checker.check_model(task["path"])
    except Exception as exc:  # noqa: BLE001
        raise StepError(f"{Path(task['path']).name} fails onnx's checker: {str(exc).splitlines()[0]}") from None
    return {"checked": True}


def normalize(task: Task) -> dict[str, Any]:
    """Rename graph inputs/outputs (``{"old": "new"}``) everywhere they appear; write ``out`` as one file."""
    import onnx

    model = _load(task["path"])
    if model.ByteSize() >= 2**31 - 1:
        raise StepError(f"{Path(task['path']).name}: over 2 GiB with its weights, more than one ONNX file can hold")
    mapping: dict[str, str] = {**task["inputs"], **task["outputs"]}
    graph = model.graph
    for value in [*graph.input, *graph.output]:
        if value.name in mapping:
            value.name = mapping[value.name]
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for value in graph.value_info:
        if value.name in mapping:
            value.name = mapping[value.name]
    onnx.save(model, task["out"], save_as_external_data=False)
    return {"onnx": task["out"]}


def run(task: Task) -> dict[str, Any]:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(task["path"], providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT names the op it lacks
        raise StepError(f"ONNX Runtime cannot load {Path(task['path']).name}: {str(exc).splitlines()[0]}") from None
    names, outputs = task["input_names"], task["output_names"]
    found: dict[str, dict[str, np.ndarray]] = {}
    for case, tensors in load_cases(Path(task["inputs"])).items():
        try:
            values = session.run(outputs, {n: tensors[n] for n in names})
        except Exception as exc:  # noqa: BLE001
            raise StepError(f"ONNX Runtime failed on {case}: {str(exc).splitlines()[0]}") from None
        found[case] = {n: np.asarray(v) for n, v in zip(outputs, values, strict=True)}
    save_cases(Path(task["out"]), found)
    cases = load_cases(Path(task["inputs"]))
    return {"cases": len(found), **timed_cases(task, lambda t: session.run(outputs, {n: t[n] for n in names}), cases)}


if __name__ == "__main__":
    sys.exit(main({"inspect": inspect, "check": check, "normalize": normalize, "run": run}))
