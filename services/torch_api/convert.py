"""PyTorch side of ``duoserve models add``: inspect and run a user's torch model, and convert to and from ONNX.

Runs as ``python -m services.torch_api.convert JOB.json`` (see :mod:`services.jobs`), never
beside TensorFlow. Tasks:

- ``inspect``: the inputs and outputs a TorchScript file or a torch.export program declares;
- ``run``: the model's outputs on each case of an ``.npz`` (the parity gate's reference or candidate);
- ``to_onnx``: torch.onnx's exporter (torch.export programs: the dynamo exporter; TorchScript:
  the TorchScript-based one, the only one that takes a ScriptModule), batch and dynamic axes kept;
- ``from_onnx``: onnx2torch, then ``torch.jit.trace`` into TorchScript (``torch.export`` if tracing fails;
  only ``torch.export`` with ``"export": true``, for the ATen lowering);
- ``to_graph``: a torch.export program decomposed to core ATen, written as a neutral graph for
  the TF side's lowering (:mod:`services.torch_api.aten_graph`).

(A ``.keras`` file goes through Keras 3's torch backend in :mod:`stack.models.keras_torch`,
which needs Keras and torch in one process: this package never imports Keras.)

Every model is wrapped so that it takes its inputs in the contract's order and returns its
outputs as a tuple in the contract's order: the wrapper only reorders, it computes nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import logging
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contract.artifacts import artifact_path
from contract.manifest import ModelEntry
from services.jobs import StepError, Task, load_cases, main, save_cases, time_calls, timed_cases
from services.torch_api.aten_graph import to_graph

#: The opset torch.onnx writes (onnx2tf and ONNX Runtime both take it).
OPSET = 18


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        yield


def _load(fmt: str, path: str) -> Any:
    if fmt == "torchscript":
        try:
            return torch.jit.load(path, map_location="cpu").eval()
        except Exception as exc:  # noqa: BLE001 - any failure: not a TorchScript file we can load
            raise StepError(
                f"{Path(path).name} is not a TorchScript file torch {torch.__version__} loads: {exc}"
            ) from None
    if fmt == "torch_export":
        try:
            return torch.export.load(path)
        except Exception as exc:  # noqa: BLE001
            raise StepError(
                f"{Path(path).name} is not a torch.export program torch {torch.__version__} loads: {exc}"
            ) from None
    raise StepError(f"unknown torch format {fmt!r}")


def _callable(fmt: str, model: Any) -> Any:
    return model.module() if fmt == "torch_export" else model


def _tuple(out: Any, names: list[str]) -> tuple[torch.Tensor, ...]:
    if isinstance(out, dict):
        return tuple(out[n] for n in names)
    if isinstance(out, (tuple, list)):
        return tuple(out)
    return (out,)


def _dtype(tensor: Any) -> str | None:
    return str(tensor).removeprefix("torch.") if tensor is not None else None


def inspect(task: Task) -> dict[str, Any]:
    """What the model declares: input names (and, for torch.export, dtypes, shapes and ranges), output names."""
    model = _load(task["format"], task["path"])
    if task["format"] == "torchscript":
        schema = model.forward.schema
        inputs = [{"name": a.name, "dtype": None, "shape": None} for a in schema.arguments[1:]]
        return {"inputs": inputs, "outputs": None}
    inputs = []
    placeholders = {n.name: n for n in model.graph.nodes if n.op == "placeholder"}
    ranges = {str(k): v for k, v in model.range_constraints.items()}
    for spec in model.graph_signature.input_specs:
        if spec.kind.name != "USER_INPUT":
            continue
        value = placeholders[spec.arg.name].meta.get("val")
        shape: list[int] = []
        most: list[int | None] = []
        for dim in value.shape:
            if isinstance(dim, int):
                shape.append(dim)
                most.append(dim)
            else:
                bound = ranges.get(str(dim))
                upper = int(bound.upper) if bound is not None and str(bound.upper) not in ("oo", "int_oo") else None
                shape.append(-1)
                most.append(upper)
        inputs.append({"name": spec.arg.name, "dtype": _dtype(value.dtype), "shape": shape, "max_shape": most})
    outputs = [s.arg.name for s in model.graph_signature.output_specs if s.kind.name == "USER_OUTPUT"]
    return {"inputs": inputs, "outputs": outputs}


def run(task: Task) -> dict[str, Any]:
    """Run the model on every case; save its outputs (named as the contract says, else numbered) per case."""
    fn = _callable(task["format"], _load(task["format"], task["path"]))
    names, outputs = task["input_names"], list(task["output_names"])
    found: dict[str, dict[str, np.ndarray]] = {}
    for case, tensors in load_cases(Path(task["inputs"])).items():
        with torch.inference_mode():
            values = _tuple(fn(*(torch.from_numpy(tensors[n]) for n in names)), outputs)
        if not outputs:  # the model declares no names: number them
            outputs = ["output"] if len(values) == 1 else [f"output_{i}" for i in range(len(values))]
        if len(values) != len(outputs):
            raise StepError(f"the model returned {len(values)} outputs, the contract names {len(outputs)}")
        found[case] = {n: v.detach().cpu().numpy() for n, v in zip(outputs, values, strict=True)}
    save_cases(Path(task["out"]), found)

    def call(tensors: dict[str, np.ndarray]) -> object:
        with torch.inference_mode():
            return fn(*(torch.from_numpy(tensors[n]) for n in names))

    return {"cases": len(found), **timed_cases(task, call, load_cases(Path(task["inputs"])))}


def cases_of(entry: ModelEntry, path: str) -> list[tuple[torch.Tensor, ...]]:
    """Every case of the job's ``.npz``, as input tuples in the contract's order."""
    return [tuple(torch.from_numpy(t[n]) for n in entry.input_names) for t in load_cases(Path(path)).values()]


def examples_of(entry: ModelEntry, path: str) -> tuple[torch.Tensor, ...]:
    """The case tracing and exporting start from: the first with more than one row (torch.export
    specializes an axis whose example size is 1)."""
    cases = cases_of(entry, path)
    return next((c for c in cases if len(c[0]) > 1), cases[0])


def to_onnx(task: Task) -> dict[str, Any]:
    """torch -> ONNX, named as the contract says, with a dynamic batch axis and dynamic axes kept."""
    entry = ModelEntry.model_validate_json(task["contract"])
    examples = examples_of(entry, task["example"])
    model = _load(task["format"], task["path"])
    with _quiet():
        if task["format"] == "torchscript":
            dynamic = {
                t.name: {0: "batch", **{i + 1: f"{t.name}_{i + 1}" for i, d in enumerate(t.shape) if d == -1}}
                for t in entry.inputs
            }
            torch.onnx.export(
                model, examples, task["out"], input_names=entry.input_names, output_names=entry.output_names,
                dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
            )  # fmt: skip
        else:
            program = torch.onnx.export(
                model, examples, input_names=entry.input_names, output_names=entry.output_names,
                opset_version=OPSET, dynamo=True, verbose=False,
            )  # fmt: skip
            assert program is not None
            program.save(task["out"], external_data=False)
    _check_dynamic(entry, task["out"])
    return {"onnx": task["out"]}


def _check_dynamic(entry: ModelEntry, path: str) -> None:
    """Refuse an ONNX file whose exporter fixed an axis the contract says is dynamic.

    torch.onnx's dynamo exporter does this silently for ``nn.GRU`` (it writes ``x: [batch,
    20, 10]`` for a dynamic sequence axis), and ONNX Runtime then refuses every other length.
    """
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    dims = {i.name: i.type.tensor_type.shape.dim for i in graph.input}
    for tensor in entry.inputs:
        found = dims.get(tensor.name)
        if found is None:
            raise StepError(f"torch.onnx wrote no input {tensor.name!r}")
        for axis, want in enumerate((-1, *tensor.shape)):
            if want == -1 and axis < len(found) and found[axis].HasField("dim_value"):
                raise StepError(
                    f"torch.onnx fixed axis {axis} of input {tensor.name} at {found[axis].dim_value}, "
                    "which the model declares dynamic: the exported ONNX would refuse every other size"
                )


class Ordered(torch.nn.Module):
    """Inputs in the contract's order to the model's order; outputs to a tuple in the contract's order."""

    def __init__(self, model: torch.nn.Module, positions: list[int], outputs: list[int]) -> None:
        super().__init__()
        self.model = model
        self.positions = positions
        self.outputs = outputs

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*(args[i] for i in self.positions))
        values = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(values[i] for i in self.outputs)


def _onnx2torch() -> Any:
    """onnx2torch, importable although PyPI's torchvision does not load beside this CPU torch.

    onnx2torch imports torchvision at import time for two converters only (NonMaxSuppression,
    RoiAlign). PyPI's torchvision wheels are built against CUDA torch and fail to load here
    (``operator torchvision::nms does not exist``), so it is not installed; a stand-in module
    makes the import succeed and makes those two ops, and only they, fail with a clear message.
    """
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:

        def unavailable(*args: object, **kwargs: object) -> None:
            raise StepError("this op needs torchvision, which does not load with this torch build; use --pair")

        stand_in = types.ModuleType("torchvision")
        ops = types.ModuleType("torchvision.ops")
        # a spec, so that importlib.util.find_spec("torchvision") (torch.onnx asks) answers instead of raising
        stand_in.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
        ops.__spec__ = importlib.machinery.ModuleSpec("torchvision.ops", None)
        ops.nms = ops.roi_align = ops.box_convert = unavailable  # type: ignore[attr-defined]
        stand_in.ops = ops  # type: ignore[attr-defined]
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = stand_in, ops
    module = importlib.import_module("onnx2torch")
    from services.torch_api.onnx2torch_ops import register

    register()
    return module


def _agrees(fn: Any, module: torch.nn.Module, cases: list[tuple[torch.Tensor, ...]], atol: float = 1e-6) -> str | None:
    """None when ``fn`` reproduces ``module`` on every case, else what differs (the first case that does)."""
    for args in cases:
        with torch.inference_mode():
            want = module(*args)
            try:
                got = fn(*args)
            except Exception as exc:  # noqa: BLE001 - a shape baked in at trace time fails here
                return f"fails at input shapes {[list(a.shape) for a in args]}: {str(exc).splitlines()[0]}"
        if not all(torch.allclose(a, b, atol=atol, equal_nan=True) for a, b in zip(got, want, strict=True)):
            return f"differs at input shapes {[list(a.shape) for a in args]}"
    return None


def save_torch(
    module: torch.nn.Module,
    entry: ModelEntry,
    cases: list[tuple[torch.Tensor, ...]],
    out_dir: Path,
    *,
    program: bool = False,
) -> dict[str, Any]:
    """TorchScript by tracing if it reproduces the module on every case, else a torch.export program that does.

    Tracing records one input shape's Python-level shape arithmetic as constants (onnx2torch's
    graphs compute shapes in Python), so the trace is checked on every case (batch 1, 7, the
    max batch, dynamic axes at several sizes) before it is kept. Traced with TF32 off, as the
    built-in exports are: the trace stores cuDNN's ``allow_tf32`` in every convolution, and a
    TF32 convolution on a GPU host leaves the 1e-4 parity (``services.torch_api.export``).
    ``program``: a torch.export program only (what the ATen lowering reads).
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    module.eval()
    examples = next((c for c in cases if len(c[0]) > 1), cases[0])
    errors: list[str] = []
    with _quiet():
        for attempt in ([] if program else [_trace]) + [_export]:
            try:
                found, problem = attempt(module, entry, examples, cases, out_dir)
            except Exception as exc:  # noqa: BLE001 - the next attempt, or the refusal naming each
                errors.append(f"{attempt.__doc__}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                continue
            if found is not None:
                return found
            errors.append(f"{attempt.__doc__}: {problem}")
    raise StepError("cannot make a TorchServe artifact: " + "; ".join(errors))


def _trace(
    module: torch.nn.Module, entry: ModelEntry, examples: Any, cases: list[tuple[torch.Tensor, ...]], out_dir: Path
) -> tuple[dict[str, Any] | None, str | None]:
    """torch.jit.trace"""
    traced = torch.jit.trace(module, examples, check_trace=False)
    problem = _agrees(traced, module, cases)
    if problem is not None:
        return None, f"the traced module {problem}"
    kept, timed = _frozen_if_faster(traced, module, cases)
    return {**_kept("torchscript", entry, out_dir, lambda path: torch.jit.save(kept, path)), **timed}, None


def _frozen_if_faster(
    traced: torch.jit.ScriptModule, module: torch.nn.Module, cases: list[tuple[torch.Tensor, ...]]
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The trace frozen by ``torch.jit.freeze`` when that reproduces it and runs faster in process.

    Freezing makes the parameters constants and folds what depends on them alone: Keras on its
    torch backend transposes every kernel to its channels-last layout on each call, work a
    frozen graph does once. Measured on the zoo's Keras CNNs, the frozen trace ran 1.7-4.5x
    faster than the trace at batch 1 (docs/models.md), so it is timed against the trace, both at the
    largest case, and the faster one kept. Folding reassociates float arithmetic (convolution
    and batch norm), hence the 1e-5 agreement; the parity gate checks it against the source.
    Returns the module kept and ``{"frozen": bool, "trace_ms", "frozen_ms"}`` (times absent
    when the frozen graph does not reproduce the trace).
    """
    try:
        frozen = torch.jit.freeze(traced.eval())
    except Exception:  # noqa: BLE001 - a trace freezing cannot take is served as traced
        return traced, {"frozen": False}
    if _agrees(frozen, module, cases, atol=1e-5) is not None:
        return traced, {"frozen": False}
    largest = max(cases, key=lambda case: len(case[0]))
    with torch.inference_mode():
        trace_ms, _ = time_calls(lambda: traced(*largest))
        frozen_ms, _ = time_calls(lambda: frozen(*largest))
    faster = frozen_ms < trace_ms
    return (frozen if faster else traced), {"frozen": faster, "trace_ms": trace_ms, "frozen_ms": frozen_ms}


def _export(
    module: torch.nn.Module, entry: ModelEntry, examples: Any, cases: list[tuple[torch.Tensor, ...]], out_dir: Path
) -> tuple[dict[str, Any] | None, str | None]:
    """torch.export"""
    batch = torch.export.Dim("batch", min=1, max=max(2, entry.max_batch))
    shapes = tuple(
        {0: batch, **{i + 1: torch.export.Dim(f"{t.name}_{i + 1}", min=1, max=m)
                     for i, (d, m) in enumerate(zip(t.shape, t.largest, strict=True)) if d == -1}}
        for t in entry.inputs
    )  # fmt: skip
    # Ordered.forward takes *args: its dynamic shapes are one tuple, for that one parameter
    program = torch.export.export(module, examples, dynamic_shapes=(shapes,))
    problem = _agrees(program.module(), module, cases)
    if problem is not None:
        return None, f"the exported program {problem}"
    return _kept("torch_export", entry, out_dir, lambda path: torch.export.save(program, path)), None


def _kept(kind: str, entry: ModelEntry, out_dir: Path, save: Callable[[str], object]) -> dict[str, Any]:
    """Save an artifact where the artifacts layout puts ``kind`` under ``out_dir``; its kind and path."""
    path = artifact_path(out_dir, entry.name, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(str(path))
    return {"kind": kind, "path": str(path)}


def from_onnx(task: Task) -> dict[str, Any]:
    """ONNX -> PyTorch (onnx2torch) -> TorchScript or torch.export."""
    import onnx

    entry = ModelEntry.model_validate_json(task["contract"])
    graph = onnx.load(task["onnx"]).graph
    initializers = {i.name for i in graph.initializer}
    onnx_inputs = [i.name for i in graph.input if i.name not in initializers]
    onnx_outputs = [o.name for o in graph.output]
    try:
        converted = _onnx2torch().convert(task["onnx"])
    except NotImplementedError as exc:
        raise StepError(f"onnx2torch cannot convert this model: {exc}") from None
    module = Ordered(
        converted,
        [entry.input_names.index(n) for n in onnx_inputs],
        [onnx_outputs.index(n) for n in entry.output_names],
    )
    cases = cases_of(entry, task["example"])
    return save_torch(module, entry, cases, Path(task["out_dir"]), program=bool(task.get("export")))


HANDLERS = {"inspect": inspect, "run": run, "to_onnx": to_onnx, "from_onnx": from_onnx, "to_graph": to_graph}

if __name__ == "__main__":
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    sys.exit(main(HANDLERS))
