"""JSON request bodies to tensors and tensors back to JSON, checked against a model's contract.

Both request formats of TF Serving's REST API, which every stack takes unchanged:

* row: ``{"instances": [inst, ...]}``; with several inputs each instance is an object
  ``{"ids": [...], "mask": [...]}`` (a single-input model takes bare values or objects);
* columnar: ``{"inputs": {"ids": [[...], ...], "mask": [[...], ...]}}`` (or ``{"inputs": [...]}``
  for a single input), every value carrying the batch axis.

Answers mirror the request's format as TF Serving writes them: ``{"predictions": rows}``
(one output) or ``{"predictions": [{"out": ...}, ...]}`` (several), and ``{"outputs": ...}``
for a columnar request. Used by the TorchServe handler (a copy of this package travels in
every ``.mar``), the gateway and the load tests, so it imports only numpy, the standard
library, the manifest and the dtype table (:mod:`contract.dtypes`). Every failure is an
:class:`InputError` whose message names what was expected and, where there is one, the
offending instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .dtypes import DTYPES
from .dtypes import NUMPY_DTYPES as NUMPY_DTYPES  # re-exported for its users; the table is contract.dtypes
from .manifest import ModelEntry, TensorSpec

Format = Literal["row", "columnar"]
#: Nesting deeper than this is refused before numpy sees it (no real instance is deeper).
MAX_DEPTH = 8


class InputError(ValueError):
    """The caller's input is wrong; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Request:
    """A checked request: one array per input (the contract's dtype), its row count and format."""

    arrays: dict[str, np.ndarray]
    rows: int
    format: Format
    body: dict[str, Any]


def _reject_constant(name: str) -> float:
    raise InputError(f"request body contains {name}; instances must hold finite numbers")


def parse_json(raw: bytes | bytearray | str) -> Any:
    """Parse a request body; NaN and Infinity literals (which Python's json accepts) are refused."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"request body is not UTF-8 JSON: {exc}") from None
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except InputError:
        raise
    except RecursionError:
        raise InputError("request body is nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"request body is not valid JSON: {exc}") from None


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def expected_text(entry: ModelEntry) -> str:
    """How the caller should have sent it, for every error message."""
    if len(entry.inputs) == 1:
        tensor = entry.inputs[0]
        return (
            f'model {entry.name} expects {{"instances": [...]}} with 1 to {entry.max_batch} instances, '
            f"each of shape {tensor.shape_text()} ({tensor.dtype})"
        )
    keys = ", ".join(f'"{t.name}": ...' for t in entry.inputs)
    each = ", ".join(f"{t.name} of shape {t.shape_text()} ({t.dtype})" for t in entry.inputs)
    return (
        f'model {entry.name} expects {{"instances": [{{{keys}}}, ...]}} or {{"inputs": {{{keys}}}}} '
        f"with 1 to {entry.max_batch} instances, each with {each}"
    )


def _find_bad(value: Any, path: str, dtype: str, depth: int = 0) -> str | None:
    """Path and JSON of the first leaf of ``value`` that ``dtype`` cannot take (bools only in bool tensors)."""
    if depth > MAX_DEPTH:
        return f"{path} (nested deeper than {MAX_DEPTH} levels)"
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _find_bad(item, f"{path}[{i}]", dtype, depth + 1)
            if found:
                return found
        return None
    if dtype == "bool":
        ok = isinstance(value, bool)
    elif dtype in ("int64", "int32"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok else f"{path} = {json.dumps(value)[:40]}"


def bad_leaf(value: Any, path: str, dtype: str) -> str | None:
    """Path and JSON of the first leaf of a nested list that ``dtype`` cannot take, or None."""
    return _find_bad(value, path, dtype)


def _nested_shape(value: Any) -> list[int] | None:
    """Shape of a regular nested list, or None if it is ragged."""
    try:
        array = np.asarray(value)  # numpy 2 refuses inhomogeneous nesting with ValueError
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    return list(array.shape)


def _bad_value(found: str, tensor: TensorSpec, expected: str) -> InputError:
    wrong = DTYPES[tensor.dtype].wrong
    return InputError(f"{wrong} value at {found}; {expected}")


@dataclass(frozen=True)
class Where:
    """How an error names instance ``i`` of a tensor: as a JSON path and in words."""

    path: Callable[[int], str] = lambda i: f"instances[{i}]"
    name: Callable[[int], str] = lambda i: f"instance {i}"


def _diagnose(values: list[Any], tensor: TensorSpec, where: Where, expected: str) -> np.ndarray:
    """Find the first bad instance and raise; or return the array if every instance is fine after all."""
    for i, instance in enumerate(values):
        found = _find_bad(instance, where.path(i), tensor.dtype)
        if found:
            raise _bad_value(found, tensor, expected)
        got = _nested_shape(instance)
        if got is None:
            raise InputError(f"{where.name(i)} is ragged (its rows differ in length); {expected}")
        if not tensor.fits(got):
            raise InputError(f"{where.name(i)} has shape {_shape_text(got)}; {expected}")
    shapes = sorted({tuple(_nested_shape(v) or ()) for v in values})
    if len(shapes) > 1:
        raise InputError(
            f"the instances of {tensor.name} differ in shape ({', '.join(_shape_text(s) for s in shapes)}); "
            f"one request holds instances of one shape; {expected}"
        )
    try:  # only good leaves and shapes: e.g. an integer beyond int64 made numpy pick 'object'
        return np.asarray(values, dtype=np.float64 if tensor.dtype.startswith("float") else None)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"instances could not be read as numbers ({exc}); {expected}") from None


def _cast(array: np.ndarray, tensor: TensorSpec, where: Where, expected: str) -> np.ndarray:
    if tensor.dtype.startswith("float"):
        with np.errstate(over="ignore", invalid="ignore"):
            result = array.astype(NUMPY_DTYPES[tensor.dtype])
        finite = np.isfinite(result)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            at = "".join(f"[{int(i)}]" for i in bad[1:])
            raise InputError(
                f"{where.name(int(bad[0]))} holds a value at {at or '[]'} that is NaN, infinite "
                f"or beyond {tensor.dtype}'s range; {expected}"
            )
        return result
    if tensor.dtype == "bool":
        return array.astype(np.bool_)
    info = np.iinfo(np.int64 if tensor.dtype == "int64" else np.int32)
    if array.dtype.kind not in "iu" or (array.size and (array.min() < info.min or array.max() > info.max)):
        raise InputError(f"{tensor.name} holds an integer beyond {tensor.dtype}'s range; {expected}")
    return array.astype(NUMPY_DTYPES[tensor.dtype])


def to_array(
    values: list[Any],
    tensor: TensorSpec,
    expected: str,
    *,
    where: Where = Where(),
    may_hold_bools: bool = True,
) -> np.ndarray:
    """Stack ``values`` (one per instance) into ``[N, *shape]`` of the tensor's dtype, or raise naming the bad one.

    ``may_hold_bools=False`` lets a caller that has seen the raw body (and found no
    ``true``/``false`` in it) skip the per-element walk that catches booleans, which numpy
    would otherwise turn silently into 1.0 and 0.0.
    """
    if may_hold_bools and tensor.dtype != "bool":
        for i, instance in enumerate(values):
            found = _find_bad(instance, where.path(i), "float32")  # bools and non-numbers; the dtype is judged below
            if found:
                raise _bad_value(found, tensor, expected)
    try:
        # No dtype: numpy's inference reveals strings ('U'), nulls and objects ('O');
        # asking for float64 would quietly turn "3" into 3.0 and null into NaN.
        array: np.ndarray | None = np.asarray(values)
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = None
    if array is None or array.dtype.kind not in DTYPES[tensor.dtype].kinds or not tensor.fits(array.shape[1:]):
        array = _diagnose(values, tensor, where, expected)
        if array.dtype.kind not in DTYPES[tensor.dtype].kinds:
            raise InputError(f"{tensor.name} cannot be read as {tensor.dtype}; {expected}")
    return _cast(array, tensor, where, expected)


def _rows_checked(count: int, entry: ModelEntry, expected: str, what: str) -> int:
    if count == 0:
        raise InputError(f"{what} is empty; {expected}")
    if count > entry.max_batch:
        raise InputError(f"{what} holds {count} instances, more than {entry.max_batch}; {expected}", 413)
    return count


def _row_where(name: str) -> Where:
    return Where(lambda i: f"instances[{i}].{name}", lambda i: f"instance {i} ({name})")


def _columnar_where(name: str) -> Where:
    return Where(lambda i: f"inputs.{name}[{i}]", lambda i: f"inputs.{name}[{i}]")


def _row_format(instances: Any, entry: ModelEntry, expected: str, may_hold_bools: bool) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise InputError(f'"instances" must be a list, got {type(instances).__name__}; {expected}')
    _rows_checked(len(instances), entry, expected, '"instances"')
    if len(entry.inputs) == 1 and not isinstance(instances[0], Mapping):
        return {entry.inputs[0].name: to_array(instances, entry.inputs[0], expected, may_hold_bools=may_hold_bools)}
    names = entry.input_names
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for i, instance in enumerate(instances):
        if not isinstance(instance, Mapping) or set(instance) != set(names):
            got = sorted(instance) if isinstance(instance, Mapping) else type(instance).__name__
            raise InputError(f"instance {i} must be an object with the keys {', '.join(names)}; got {got}; {expected}")
        for name in names:
            columns[name].append(instance[name])
    return {
        t.name: to_array(columns[t.name], t, expected, where=_row_where(t.name), may_hold_bools=may_hold_bools)
        for t in entry.inputs
    }


def _columnar_format(inputs: Any, entry: ModelEntry, expected: str, may_hold_bools: bool) -> dict[str, np.ndarray]:
    names = entry.input_names
    if not isinstance(inputs, Mapping):
        if len(names) > 1:
            raise InputError(f'"inputs" must be an object with the keys {", ".join(names)}; {expected}')
        inputs = {names[0]: inputs}
    if set(inputs) != set(names):
        raise InputError(f'"inputs" has the keys {sorted(inputs)}; expected {", ".join(names)}; {expected}')
    arrays: dict[str, np.ndarray] = {}
    for tensor in entry.inputs:
        value = inputs[tensor.name]
        if not isinstance(value, list):
            raise InputError(f'"inputs".{tensor.name} must be a list of instances; {expected}')
        _rows_checked(len(value), entry, expected, f'"inputs".{tensor.name}')
        arrays[tensor.name] = to_array(
            value, tensor, expected, where=_columnar_where(tensor.name), may_hold_bools=may_hold_bools
        )
    rows = {len(a) for a in arrays.values()}
    if len(rows) > 1:
        raise InputError(f'the tensors of "inputs" differ in their number of instances ({sorted(rows)}); {expected}')
    return arrays


def read_request(body: Any, entry: ModelEntry, *, may_hold_bools: bool = True) -> Request:
    """Check an already parsed body against ``entry``; :class:`InputError` for anything wrong."""
    expected = expected_text(entry)
    if not isinstance(body, Mapping):
        raise InputError(f"request body must be a JSON object; got {type(body).__name__}; {expected}")
    if "instances" in body and "inputs" in body:
        raise InputError(f'request body has both "instances" and "inputs"; send one; {expected}')
    if "instances" in body:
        arrays = _row_format(body["instances"], entry, expected, may_hold_bools)
        fmt: Format = "row"
    elif "inputs" in body:
        arrays = _columnar_format(body["inputs"], entry, expected, may_hold_bools)
        fmt = "columnar"
    else:
        raise InputError(f'request body has no "instances"; {expected}')
    rows = len(next(iter(arrays.values())))
    return Request(arrays, rows, fmt, dict(body))


def parse_request(raw: Any, entry: ModelEntry) -> Request:
    """Raw body (bytes or str), or an already parsed one, checked against ``entry``."""
    if isinstance(raw, (bytes, bytearray, str)):
        body = parse_json(raw)
        may_hold_bools = (
            ("true" in raw or "false" in raw) if isinstance(raw, str) else (b"true" in raw or b"false" in raw)
        )
        return read_request(body, entry, may_hold_bools=may_hold_bools)
    return read_request(raw, entry)


# -- answers ----------------------------------------------------------------------------


def render_outputs(outputs: Mapping[str, np.ndarray], fmt: Format = "row") -> dict[str, Any]:
    """The answer TF Serving writes for these outputs (a single output collapses to its value)."""
    lists = {name: value.tolist() for name, value in outputs.items()}
    if fmt == "columnar":
        return {"outputs": next(iter(lists.values())) if len(lists) == 1 else lists}
    if len(lists) == 1:
        return {"predictions": next(iter(lists.values()))}
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{name: lists[name][i] for name in lists} for i in range(rows)]}


class OutputError(ValueError):
    """A backend's answer does not fit the model's outputs; the message says how."""


def _output_array(value: Any, tensor: TensorSpec, rows: int) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64 if tensor.dtype != "bool" else np.bool_)
    except (ValueError, TypeError, OverflowError):
        raise OutputError(f"output {tensor.name} is not a numeric tensor") from None
    if tensor.shape == (1,) and array.shape == (rows,):
        array = array.reshape(rows, 1)  # a single value per row may come unwrapped
    if array.ndim == 0 or array.shape[0] != rows or not tensor.fits(array.shape[1:]):
        want = f"[{rows}, {tensor.shape_text()[1:]}" if tensor.shape else f"[{rows}]"
        raise OutputError(f"output {tensor.name} has shape {list(array.shape)}; expected {want}")
    return array


def read_outputs(answer: Any, entry: ModelEntry, rows: int) -> dict[str, np.ndarray]:
    """The outputs of a backend's answer (``predictions`` or ``outputs``, as :func:`render_outputs` writes them)."""
    if not isinstance(answer, Mapping) or not ("predictions" in answer or "outputs" in answer):
        raise OutputError("the answer has neither predictions nor outputs")
    names = entry.output_names
    if "outputs" in answer:
        value = answer["outputs"]
        columns = value if isinstance(value, Mapping) and len(names) > 1 else {names[0]: value}
    else:
        predictions = answer["predictions"]
        if not isinstance(predictions, list):
            raise OutputError("predictions is not a list")
        if len(names) == 1:
            columns = {names[0]: predictions}
        else:
            if len(predictions) != rows or not all(isinstance(p, Mapping) for p in predictions):
                raise OutputError(f"predictions must be {rows} objects with the keys {', '.join(names)}")
            columns = {n: [p.get(n) for p in predictions] for n in names}
    if set(columns) != set(names):
        raise OutputError(f"the answer has the outputs {sorted(columns)}; expected {', '.join(names)}")
    return {t.name: _output_array(columns[t.name], t, rows) for t in entry.outputs}


def check_output_arrays(outputs: Mapping[str, np.ndarray], entry: ModelEntry, rows: int) -> dict[str, np.ndarray]:
    """Outputs a backend answered as arrays (binary tensors): every output, ``rows`` rows, its shape and dtype."""
    if set(outputs) != set(entry.output_names):
        raise OutputError(f"the answer has the outputs {sorted(outputs)}; expected {', '.join(entry.output_names)}")
    checked: dict[str, np.ndarray] = {}
    for tensor in entry.outputs:
        array = outputs[tensor.name]
        if array.dtype.kind not in ("b" if tensor.dtype == "bool" else "fiu"):
            raise OutputError(f"output {tensor.name} has dtype {array.dtype}; expected {tensor.dtype}")
        checked[tensor.name] = _output_array(array, tensor, rows).astype(NUMPY_DTYPES[tensor.dtype], copy=False)
    return checked


# -- seeded inputs ------------------------------------------------------------------------


def sample_inputs(entry: ModelEntry, rows: int, seed: int, index: int = 0) -> dict[str, np.ndarray]:
    """``rows`` instances of every input, drawn from the contract: the same numbers for every caller.

    Floats are uniform in the tensor's value range (default [0, 1]), integers uniform in
    their inclusive range (default 0..9), bools fair coins; a dynamic axis takes its
    declared maximum. The draw depends only on (seed, index, rows), so every process, load
    generator and stack gets the same values.
    """
    rng = np.random.default_rng([seed, index, rows])
    arrays: dict[str, np.ndarray] = {}
    for tensor in entry.inputs:
        shape = (rows, *tensor.largest)
        if tensor.dtype == "bool":
            arrays[tensor.name] = rng.random(shape) < 0.5
            continue
        if tensor.dtype.startswith("int"):
            low, high = tensor.value_range or (0, 9)
            arrays[tensor.name] = rng.integers(int(low), int(high), size=shape, endpoint=True).astype(
                NUMPY_DTYPES[tensor.dtype]
            )
            continue
        low, high = tensor.value_range or (0.0, 1.0)
        arrays[tensor.name] = rng.uniform(low, high, size=shape).astype(NUMPY_DTYPES[tensor.dtype])
    return arrays


def request_body(arrays: Mapping[str, np.ndarray], fmt: Format = "row") -> dict[str, Any]:
    """The JSON body carrying ``arrays``: ``instances`` (bare for one input, objects for several) or ``inputs``."""
    lists = {name: value.tolist() for name, value in arrays.items()}
    if fmt == "columnar":
        return {"inputs": lists}
    if len(lists) == 1:
        return {"instances": next(iter(lists.values()))}
    rows = len(next(iter(arrays.values())))
    return {"instances": [{name: lists[name][i] for name in lists} for i in range(rows)]}
