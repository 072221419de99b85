"""TF Serving's REST JSON <-> numpy tensors (the part of ``util/json_tensor.cc`` we need).

Owns: parsing a predict body (row ``instances`` or columnar ``inputs``, optional
``signature_name``) into one array per signature input, and writing outputs back as
``{"predictions": ...}`` / ``{"outputs": ...}`` the way TF Serving does (a single
output is collapsed to its value). Error texts follow json_tensor.cc, e.g.
``Missing 'inputs' or 'instances' key`` or ``JSON Value: "a" Type: String is not of
expected type: float``. One deliberate difference: NaN and Infinity literals, which
TF Serving accepts, are refused with 400 (a model input must be finite here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from services.tf_api.compat.errors import ServingError, invalid
from services.tf_api.compat.servables import Signature, TensorInfo

Format = Literal["row", "columnar"]
#: Deeper nesting than any real tensor is refused before it is walked.
MAX_RANK = 32
_TYPE_NAMES = {
    "DT_FLOAT": "float",
    "DT_DOUBLE": "double",
    "DT_HALF": "half",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_BOOL": "bool",
}


@dataclass(frozen=True)
class PredictBody:
    """A parsed predict request: which signature, which format, and the raw tensor JSON."""

    signature_name: str
    format: Format
    payload: Any
    may_hold_bools: bool


def _js(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _refuse_constant(name: str) -> Any:
    raise invalid(f"JSON Value: {name} is not a finite number; duoserve-compat refuses NaN and Infinity")


def parse_body(raw: bytes) -> PredictBody:
    """Parse a predict request body; INVALID_ARGUMENT with TF Serving's text when it is malformed."""
    if not raw.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(raw, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    except UnicodeDecodeError as exc:
        raise invalid(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from None
    except RecursionError:
        raise invalid("JSON Parse error: nested too deeply") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_js(doc)} Is not object")
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid(f"JSON Value: {_js(doc)} not formatted correctly. 'signature_name' key must be a string value.")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {_js(doc)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    may_hold_bools = b"true" in raw or b"false" in raw
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {_js(doc)} Excepting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {_js(doc)} No values in 'instances' array")
        return PredictBody(signature_name, "row", instances, may_hold_bools)
    if has_inputs:
        return PredictBody(signature_name, "columnar", doc["inputs"], may_hold_bools)
    raise invalid("Missing 'inputs' or 'instances' key")


def _dense_shape(value: Any) -> list[int]:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_RANK:
            raise invalid(f"JSON Value is nested more than {MAX_RANK} levels deep")
        if not value:
            break
        value = value[0]
    return shape


def _walk(value: Any, level: int, shape: list[int], type_name: str) -> None:
    """Raise TF Serving's error for the first value that does not fit a dense ``shape`` of numbers."""
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid(
                f"JSON Value: {_js(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {len(shape)}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid(f"JSON Value: {_js(value)} Type: {_json_type(value)} is not of expected type: {type_name}")
        return
    if level >= len(shape):
        raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _walk(item, level + 1, shape, type_name)


def _convert(value: Any, info: TensorInfo, may_hold_bools: bool) -> np.ndarray:
    """One tensor's JSON value -> array of the signature's dtype, or TF Serving's error."""
    type_name = _TYPE_NAMES.get(info.dtype_name, info.dtype_name)
    if info.dtype.kind == "b":
        return _booleans(value, type_name)
    if info.dtype.kind not in "fiu":
        raise invalid(f"duoserve-compat serves numeric and bool inputs only; this input is {info.dtype_name}")
    array: np.ndarray | None
    try:
        # No dtype: numpy's own inference exposes strings, nulls and ragged lists.
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = None
    if array is None or array.dtype.kind not in "fiu" or may_hold_bools:
        _walk(value, 0, _dense_shape(value), type_name)
        if array is None or array.dtype.kind not in "fiu":
            array = np.asarray(value, dtype=np.float64)
    if info.dtype.kind == "f":
        limit = float(np.finfo(info.dtype).max)
        with np.errstate(over="ignore", invalid="ignore"):
            too_big = np.abs(array) > limit
        if too_big.any():
            bad = array[too_big].flat[0]
            raise invalid(f"Cannot convert JSON value: {float(bad)!r} to {type_name} without loss of precision.")
    return array.astype(info.dtype)


def _booleans(value: Any, type_name: str) -> np.ndarray:
    """A bool tensor takes JSON true/false only, as TF Serving's json_tensor does."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = None
    if array is None or array.dtype.kind != "b":
        shape = _dense_shape(value)
        _walk_bools(value, 0, shape, type_name)
        raise invalid(f"JSON Value: {_js(value)} is not a dense tensor of {type_name}")
    return array


def _walk_bools(value: Any, level: int, shape: list[int], type_name: str) -> None:
    if isinstance(value, list):
        for item in value:
            _walk_bools(item, level + 1, shape, type_name)
        return
    if not isinstance(value, bool):
        raise invalid(f"JSON Value: {_js(value)} Type: {_json_type(value)} is not of expected type: {type_name}")


def _shape_text(shape: list[int] | tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _rows(instances: list[Any], name: str, info: TensorInfo, may_hold_bools: bool) -> np.ndarray:
    try:
        return _convert(instances, info, may_hold_bools)
    except ServingError:
        pass  # find which element is wrong, for TF Serving's per-element text
    first: list[int] | None = None
    for i, item in enumerate(instances):
        try:
            _convert(item, info, may_hold_bools)
            shape = _dense_shape(item)
        except ServingError as exc:
            raise invalid(
                f"Failed to process element: {i} of 'instances' list. Error: INVALID_ARGUMENT: {exc.message}"
            ) from None
        if first is None:
            first = shape
        elif int(np.prod(first)) != int(np.prod(shape)):
            raise invalid(f"Expecting tensor size: {int(np.prod(first))} but got: {int(np.prod(shape))}")
        elif first != shape:
            raise invalid(f"Expecting shape {_shape_text(first)} but got: {_shape_text(shape)}")
    raise invalid(f"instances could not be read as a {info.dtype_name} tensor for input {name}")


def to_inputs(body: PredictBody, signature: Signature) -> dict[str, np.ndarray]:
    """The request's tensors, one per signature input."""
    names = sorted(signature.inputs)
    if body.format == "columnar":
        value = body.payload
        if not isinstance(value, dict):
            if len(names) > 1:
                raise invalid(
                    "inputs is a plain value/list, but expecting an object as multiple input tensors required "
                    "as per tensorinfo_map"
                )
            return {names[0]: _convert(value, signature.inputs[names[0]], body.may_hold_bools)}
        missing = [n for n in names if n not in value]
        if missing:
            raise invalid(f"Missing named input: {missing[0]} in 'inputs' object.")
        return {n: _convert(value[n], signature.inputs[n], body.may_hold_bools) for n in names}
    instances: list[Any] = body.payload
    if not isinstance(instances[0], dict):
        if len(names) > 1:
            raise invalid(
                "instances is a plain list, but expecting list of objects as multiple input tensors required "
                "as per tensorinfo_map"
            )
        return {names[0]: _rows(instances, names[0], signature.inputs[names[0]], body.may_hold_bools)}
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for i, item in enumerate(instances):
        if not isinstance(item, dict):
            raise invalid(f"Expecting object but got list at item {i} of input list")
        if set(item) != set(names):
            raise invalid(
                f"Failed to process element: {i} of 'instances' list. JSON object: {_js(item)} "
                f"must only have keys: {','.join(names)}"
            )
        for n in names:
            columns[n].append(item[n])
    return {n: _rows(columns[n], n, signature.inputs[n], body.may_hold_bools) for n in names}


def render(outputs: dict[str, np.ndarray], fmt: Format) -> bytes:
    """The response body TF Serving writes for these outputs."""
    if fmt == "columnar":
        if len(outputs) == 1:
            return json.dumps({"outputs": next(iter(outputs.values())).tolist()}).encode()
        return json.dumps({"outputs": {k: v.tolist() for k, v in outputs.items()}}).encode()
    if len(outputs) == 1:
        return json.dumps({"predictions": next(iter(outputs.values())).tolist()}).encode()
    sizes = {v.shape[0] if v.ndim else -1 for v in outputs.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise invalid("Batch size for output tensors is not the same or is not a list; use the columnar format")
    lists = {k: v.tolist() for k, v in outputs.items()}
    rows = [{k: lists[k][i] for k in outputs} for i in range(sizes.pop())]
    return json.dumps({"predictions": rows}).encode()
