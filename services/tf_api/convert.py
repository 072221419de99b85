"""TensorFlow side of ``duoserve models add``: inspect and run a user's TF model, and convert to and from it.

Runs as ``python -m services.tf_api.convert JOB.json`` (see :mod:`services.jobs`), never
beside torch. Tasks:

- ``inspect``: the inputs and outputs a SavedModel signature or a ``.keras`` model declares;
- ``run``: a SavedModel signature's or a ``.keras`` model's outputs on each case of an ``.npz``;
- ``to_savedmodel``: a ``.keras`` file exported as a SavedModel whose signature takes and
  returns the contract's names (Keras' own ExportArchive);
- ``resign``: a SavedModel made by a converter (onnx2tf) re-exported with one signature named as
  the contract says: the new signature only calls the converted one, renaming inputs and outputs;
- ``to_onnx``: a SavedModel signature to ONNX with tf2onnx, inputs and outputs named as the contract says;
- ``from_graph``: a core-ATen graph (``graph.json`` + ``weights.npz``, written by the torch side's
  ``to_graph``) lowered into a SavedModel by :mod:`services.tf_api.aten`;
- ``run_graph``: the same lowering run on each case of an ``.npz`` without saving (op-by-op tests).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from contract.manifest import ModelEntry
from services.jobs import StepError, Task, load_cases, main, save_cases, timed_cases

OPSET = 18


def _dtype(dtype: Any) -> str:
    return str(tf.dtypes.as_dtype(dtype).name)


def _shape(shape: Any) -> list[int] | None:
    if shape is None or shape.rank is None:
        return None
    return [-1 if d is None else int(d) for d in shape.as_list()]


def _signature(path: str, name: str) -> Any:
    try:
        loaded = tf.saved_model.load(path)
    except Exception as exc:  # noqa: BLE001 - any failure: not a SavedModel TF loads
        raise StepError(f"{Path(path).name} is not a SavedModel TensorFlow {tf.__version__} loads: {exc}") from None
    signatures = dict(loaded.signatures)
    if name not in signatures:
        raise StepError(
            f"the SavedModel has no signature {name!r} (it has: {', '.join(signatures) or 'none'}); "
            "export one named serving_default"
        )
    return loaded, signatures[name]


def _keras(path: str) -> Any:
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001
        raise StepError(f"{Path(path).name} is not a .keras model Keras loads: {exc}") from None


def _keras_name(tensor: Any, index: int, kind: str) -> str:
    name = getattr(tensor, "name", None) or f"{kind}_{index}"
    return str(name).split(":")[0]


def inspect(task: Task) -> dict[str, Any]:
    """Names, dtypes and shapes (batch axis first, -1 where unknown) of the inputs and outputs."""
    if task["format"] == "keras":
        model = _keras(task["path"])
        declared = [
            {
                "name": _keras_name(t, i, "input"),
                "dtype": _dtype(t.dtype),
                "shape": [-1 if d is None else d for d in t.shape],
            }
            for i, t in enumerate(model.inputs)
        ]
        # a Functional model names its outputs by their layers; a KerasTensor's own name is internal
        names = list(getattr(model, "output_names", None) or [])
        outputs = (
            names
            if len(names) == len(model.outputs)
            else [_keras_name(t, i, "output") for i, t in enumerate(model.outputs)]
        )
        return {"inputs": declared, "outputs": outputs}
    _, signature = _signature(task["path"], task.get("signature", "serving_default"))
    _, kwargs = signature.structured_input_signature
    inputs: list[dict[str, Any]] = [
        {"name": k, "dtype": _dtype(v.dtype), "shape": _shape(v.shape)} for k, v in sorted(kwargs.items())
    ]
    outputs = sorted(signature.structured_outputs)
    return {"inputs": inputs, "outputs": outputs}


def op_error(exc: Exception) -> str:
    """A TensorFlow run-time error in one line: what failed and at which node (not its Python traceback)."""
    text = getattr(exc, "message", None) or str(exc)
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip()
        and not line.startswith((" ", "\t"))
        and not line.startswith(("Detected at node", "Graph execution error"))
    ]
    node = re.search(r"\{\{node ([^}]+)\}\}", text)
    what = lines[-1] if lines else text.strip().splitlines()[0]
    return what + (f" (at node {node.group(1)})" if node and node.group(1) not in what else "")


def run(task: Task) -> dict[str, Any]:
    """Outputs, named as the contract says, on every case."""
    names, outputs = task["input_names"], task["output_names"]
    found: dict[str, dict[str, np.ndarray]] = {}
    cases = load_cases(Path(task["inputs"]))
    call: Any
    if task["format"] == "keras":
        model = _keras(task["path"])
        for case, tensors in cases.items():
            args = [tensors[n] for n in names]
            out = model(args if len(args) > 1 else args[0], training=False)
            values = (
                list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (list, tuple)) else [out]
            )
            found[case] = {n: np.asarray(v) for n, v in zip(outputs, values, strict=True)}
        # timed as Keras runs it in production: a traced graph, not eager calls
        graph = tf.function(lambda *args: model(list(args) if len(args) > 1 else args[0], training=False))

        def call(tensors: dict[str, np.ndarray]) -> object:
            return graph(*(tf.constant(tensors[n]) for n in names))

    else:
        _, signature = _signature(task["path"], task.get("signature", "serving_default"))
        for case, tensors in cases.items():
            try:
                out = signature(**{n: tf.constant(tensors[n]) for n in names})
            except tf.errors.OpError as exc:
                raise StepError(f"TensorFlow fails on {case}: {op_error(exc)}") from None
            missing = [n for n in outputs if n not in out]
            if missing:
                raise StepError(f"the signature has no output {missing[0]!r} (it has {', '.join(sorted(out))})")
            found[case] = {n: out[n].numpy() for n in outputs}

        def call(tensors: dict[str, np.ndarray]) -> object:
            return signature(**{n: tf.constant(tensors[n]) for n in names})

    save_cases(Path(task["out"]), found)
    return {"cases": len(found), **timed_cases(task, call, cases)}


def _specs(entry: ModelEntry) -> list[tf.TensorSpec]:
    return [
        tf.TensorSpec([None, *(None if d == -1 else d for d in t.shape)], tf.dtypes.as_dtype(t.dtype), name=t.name)
        for t in entry.inputs
    ]


def to_savedmodel(task: Task) -> dict[str, Any]:
    """A ``.keras`` model exported with one signature taking and returning the contract's names."""
    from keras.export import ExportArchive

    entry = ModelEntry.model_validate_json(task["contract"])
    model = _keras(task["keras"])
    names = entry.output_names

    def serve(*args: tf.Tensor) -> dict[str, tf.Tensor]:
        out = model(list(args) if len(args) > 1 else args[0], training=False)
        values = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (list, tuple)) else [out]
        return dict(zip(names, values, strict=True))

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=entry.tf_signature, fn=serve, input_signature=_specs(entry))
    archive.write_out(task["out"], verbose=False)
    return {"savedmodel": task["out"]}


def _match(ours: list[str], theirs: list[str], what: str) -> dict[str, str]:
    """Our tensor name -> the converter's: the same name (case and punctuation aside), else onnx2tf's
    positional ``output_<i>``, else the only one."""

    def key(name: str) -> str:
        return re.sub(r"[^a-z0-9]", "", name.lower())

    by_key = {key(t): t for t in theirs}
    if len(by_key) == len(theirs) and all(key(o) in by_key for o in ours):
        return {o: by_key[key(o)] for o in ours}
    positional = {int(m.group(1)): t for t in theirs if (m := re.fullmatch(r"output_(\d+)", t))}
    if len(positional) == len(theirs) == len(ours) and sorted(positional) == list(range(len(ours))):
        return {o: positional[i] for i, o in enumerate(ours)}
    if len(ours) == len(theirs) == 1:
        return {ours[0]: theirs[0]}
    raise StepError(f"the converted SavedModel's {what}s {sorted(theirs)} do not match the model's {ours}")


def resign(task: Task) -> dict[str, Any]:
    """Re-export a converter's SavedModel with one signature named as the contract says."""
    entry = ModelEntry.model_validate_json(task["contract"])
    loaded, signature = _signature(task["path"], task.get("signature", "serving_default"))
    _, kwargs = signature.structured_input_signature
    in_map = _match(entry.input_names, list(kwargs), "input")
    out_map = _match(entry.output_names, list(signature.structured_outputs), "output")

    class Renamed(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.loaded = loaded

    module = Renamed()

    @tf.function(input_signature=_specs(entry))  # type: ignore[untyped-decorator]
    def serve(*args: tf.Tensor) -> dict[str, tf.Tensor]:
        out = signature(**{in_map[t.name]: a for t, a in zip(entry.inputs, args, strict=True)})
        return {ours: out[theirs] for ours, theirs in out_map.items()}

    tf.saved_model.save(module, task["out"], signatures={entry.tf_signature: serve})
    return {"savedmodel": task["out"], "inputs": in_map, "outputs": out_map}


def to_onnx(task: Task) -> dict[str, Any]:
    """SavedModel signature -> ONNX with tf2onnx; ONNX names equal the contract's."""
    import tf2onnx

    entry = ModelEntry.model_validate_json(task["contract"])
    _, signature = _signature(task["path"], entry.tf_signature)
    specs = _specs(entry)

    @tf.function(input_signature=specs)  # type: ignore[untyped-decorator]
    def named(*args: tf.Tensor) -> dict[str, tf.Tensor]:
        out = signature(**{t.name: a for t, a in zip(entry.inputs, args, strict=True)})
        return {n: tf.identity(out[n], name=n) for n in entry.output_names}

    said = _Said()
    logger = logging.getLogger("tf2onnx")
    logger.setLevel(logging.ERROR)
    logger.addHandler(said)
    try:
        tf2onnx.convert.from_function(
            named, input_signature=specs, opset=OPSET, output_path=task["out"], outputs_as_nchw=None
        )
    except Exception as exc:  # noqa: BLE001 - the converter's own words name the op
        raise StepError(f"tf2onnx cannot convert this model: {str(exc).splitlines()[0]}") from None
    finally:
        logger.removeHandler(said)
    # tf2onnx exits normally when it meets an op it cannot express, and writes that op as it is
    unsupported = [m for m in said.messages if "Unsupported ops" in m or "is not supported" in m]
    if unsupported:
        raise StepError(f"tf2onnx cannot express this model in ONNX opset {OPSET}: {unsupported[-1]}")
    return {"onnx": task["out"]}


class _Said(logging.Handler):
    """The error lines a converter logs instead of raising."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().splitlines()[0])


def from_graph(task: Task) -> dict[str, Any]:
    """A core-ATen graph directory -> a SavedModel whose one signature takes and returns the contract's names."""
    from services.tf_api import aten

    entry = ModelEntry.model_validate_json(task["contract"])
    program = aten.load(Path(task["graph"]), entry)
    aten.save(program, Path(task["out"]))
    return {"savedmodel": task["out"], "ops": sorted({n["target"] for n in program.graph["nodes"]})}


def run_graph(task: Task) -> dict[str, Any]:
    """A core-ATen graph's outputs on every case, through the same traced function ``from_graph`` saves."""
    from services.tf_api import aten

    entry = ModelEntry.model_validate_json(task["contract"])
    fn = aten.function(aten.load(Path(task["graph"]), entry))
    found: dict[str, dict[str, np.ndarray]] = {}
    for case, tensors in load_cases(Path(task["inputs"])).items():
        try:
            out = fn(*(tf.constant(tensors[n]) for n in entry.input_names))
        except tf.errors.OpError as exc:
            raise StepError(f"TensorFlow fails on {case}: {op_error(exc)}") from None
        found[case] = {n: out[n].numpy() for n in entry.output_names}
    save_cases(Path(task["out"]), found)
    return {"cases": len(found)}


HANDLERS = {
    "inspect": inspect,
    "run": run,
    "to_savedmodel": to_savedmodel,
    "resign": resign,
    "to_onnx": to_onnx,
    "from_graph": from_graph,
    "run_graph": run_graph,
}

if __name__ == "__main__":
    sys.exit(main(HANDLERS))
