"""The Open Inference Protocol's (KServe v2) tensors, checked against a model's contract.

What the protocol's REST and gRPC requests carry, as the gateway's v2 adapters and the
TorchServe handler (a copy of this package travels in every ``.mar``) read and write it:

* a tensor is ``name``, ``shape`` (the batch axis first), ``datatype`` and its elements:
  JSON ``data`` (flat row-major, or nested to the tensor's shape), typed gRPC
  ``contents``, or raw bytes (gRPC ``raw_input_contents``; REST's binary tensor data
  extension) -- row-major, little-endian, no padding, ``BOOL`` one byte per element;
* the binary tensor data extension (REST): the body is a JSON header of
  ``Inference-Header-Content-Length`` bytes, then the binary section; every tensor whose
  ``parameters`` hold ``binary_data_size`` takes that many bytes of it, in order. An
  output is answered binary when its ``parameters.binary_data`` is true, or, without it,
  when the request's ``parameters.binary_data_output`` is.

The contract's dtypes map one to one onto the protocol's datatypes (float32 ``FP32``,
float16 ``FP16``, int64 ``INT64``, int32 ``INT32``, bool ``BOOL``); an input must come in
exactly its contract's datatype (no silent casts). ``BYTES`` is refused: no duoserve
model takes strings. Every failure is a :class:`~contract.tensors.InputError` (400;
413 past the model's ``max_batch``) whose message names the tensor and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dtypes import BY_DATATYPE, DTYPES, NUMPY_DTYPES
from .manifest import ModelEntry, TensorSpec
from .tensors import InputError, OutputError, bad_leaf, parse_json

#: The REST header that says how long the JSON part of a binary body is.
HEADER_LENGTH = "Inference-Header-Content-Length"
#: The protocol extension this module implements (Triton's name for it).
BINARY_EXTENSION = "binary_tensor_data"
#: The contract's dtype -> the protocol's datatype, and back (columns of :data:`contract.dtypes.DTYPES`)
DATATYPES: dict[str, str] = {name: d.datatype for name, d in DTYPES.items()}
DTYPE_OF: dict[str, str] = {datatype: d.name for datatype, d in BY_DATATYPE.items()}
#: Every datatype the protocol defines, so an error can tell "not this model's" from "not a datatype".
PROTOCOL_DATATYPES = (
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BF16", "BYTES",
)  # fmt: skip
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class RequestedOutput:
    """An output the caller asked for, and whether it goes back as raw bytes."""

    name: str
    binary: bool


@dataclass(frozen=True)
class InferRequest:
    """A checked inference request: one array per input (contract order and dtypes) and what to answer."""

    arrays: dict[str, np.ndarray]
    rows: int
    outputs: tuple[RequestedOutput, ...]
    parameters: dict[str, Any]
    id: str | None = None


def datatype(tensor: TensorSpec) -> str:
    """The protocol datatype of a contract tensor (``FP32``, ...)."""
    return DATATYPES[tensor.dtype]


def metadata_shape(tensor: TensorSpec) -> list[int]:
    """The tensor's shape as model metadata shows it: ``-1`` for the batch axis and for dynamic axes."""
    return [-1, *tensor.shape]


def expected_text(entry: ModelEntry) -> str:
    """What the model takes, in the protocol's words, for every error message."""
    each = ", ".join(f"{t.name} ({datatype(t)}, shape [{', '.join(['N', *_axes(t)])}])" for t in entry.inputs)
    noun = "input" if len(entry.inputs) == 1 else "inputs"
    return f"model {entry.name} takes {noun} {each}, N from 1 to {entry.max_batch}"


def _axes(tensor: TensorSpec) -> list[str]:
    return [f"≤{m}" if d == -1 else str(d) for d, m in zip(tensor.shape, tensor.largest, strict=True)]


# -- one tensor -------------------------------------------------------------------------------


def _shape(value: Any, name: str, expected: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise InputError(
            f"input {name}: shape must be a list of non-negative integers, got {_short(value)}; {expected}"
        )
    return tuple(value)


def _label(value: Any) -> str:
    """A caller's tensor name as an error message shows it: plain when it is a short string."""
    return value if isinstance(value, str) and len(value) <= 64 else _short(value)


def _short(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_datatype(tensor: TensorSpec, got: Any, entry: ModelEntry, expected: str) -> None:
    want = datatype(tensor)
    if got == want:
        return
    if got == "BYTES":
        raise InputError(
            f"input {tensor.name}: BYTES tensors are not supported (no duoserve model takes strings); "
            f"model {entry.name} takes {tensor.name} as {want}; {expected}"
        )
    what = "datatype" if got in PROTOCOL_DATATYPES else "unknown datatype"
    raise InputError(f"input {tensor.name}: {what} {_short(got)}; model {entry.name} takes it as {want}; {expected}")


def _check_shape(tensor: TensorSpec, shape: tuple[int, ...], entry: ModelEntry, expected: str) -> int:
    if len(shape) != len(tensor.shape) + 1 or shape[0] < 1 or not tensor.fits(shape[1:]):
        raise InputError(f"input {tensor.name}: shape {list(shape)} does not fit; {expected}")
    if shape[0] > entry.max_batch:
        raise InputError(
            f"input {tensor.name} holds {shape[0]} instances, more than {entry.max_batch}; {expected}", 413
        )
    return shape[0]


def _finite(array: np.ndarray, tensor: TensorSpec, expected: str) -> np.ndarray:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        at = [int(i) for i in np.argwhere(~np.isfinite(array))[0]]
        raise InputError(f"input {tensor.name} holds a NaN or infinite value at {at}; {expected}")
    return array


def tensor_from_bytes(
    tensor: TensorSpec, got_datatype: Any, shape: Any, raw: bytes | memoryview, entry: ModelEntry
) -> np.ndarray:
    """An input from its raw bytes (gRPC ``raw_input_contents``, REST binary data), checked; no copy."""
    expected = expected_text(entry)
    _check_datatype(tensor, got_datatype, entry, expected)
    dims = _shape(shape, tensor.name, expected)
    _check_shape(tensor, dims, entry, expected)
    dtype = np.dtype(NUMPY_DTYPES[tensor.dtype]).newbyteorder("<")
    need = math.prod(dims) * dtype.itemsize
    if len(raw) != need:
        raise InputError(
            f"input {tensor.name}: {len(raw)} bytes of binary data, but shape {list(dims)} of "
            f"{datatype(tensor)} is {need} bytes; {expected}"
        )
    array = np.frombuffer(raw, dtype=dtype).reshape(dims)
    if tensor.dtype == "bool" and array.size and int(array.view(np.uint8).max()) > 1:
        raise InputError(f"input {tensor.name}: BOOL bytes must be 0 or 1; {expected}")
    return _finite(array, tensor, expected)


def tensor_from_values(
    tensor: TensorSpec, got_datatype: Any, shape: Any, values: Any, entry: ModelEntry, *, may_hold_bools: bool = True
) -> np.ndarray:
    """An input from JSON ``data`` (flat or nested) or typed gRPC ``contents``, checked and cast."""
    expected = expected_text(entry)
    _check_datatype(tensor, got_datatype, entry, expected)
    dims = _shape(shape, tensor.name, expected)
    _check_shape(tensor, dims, entry, expected)
    if may_hold_bools and tensor.dtype != "bool" and isinstance(values, list):
        found = bad_leaf(values, f"{tensor.name}.data", "float32")  # bools and non-numbers
        if found:
            raise InputError(f"input {tensor.name}: non-numeric value at {found}; {expected}")
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise InputError(f"input {tensor.name}: data is ragged or not numbers; {expected}") from None
    kinds = DTYPES[tensor.dtype].kinds
    if array.size and array.dtype.kind not in kinds:
        raise InputError(f"input {tensor.name}: data cannot be read as {datatype(tensor)}; {expected}")
    if array.ndim > 1 and array.shape != dims:
        raise InputError(f"input {tensor.name}: data is nested as {list(array.shape)}, not as its shape {list(dims)}")
    if array.size != math.prod(dims):
        raise InputError(
            f"input {tensor.name}: data holds {array.size} elements, but shape {list(dims)} has "
            f"{math.prod(dims)}; {expected}"
        )
    target = NUMPY_DTYPES[tensor.dtype]
    if array.dtype.kind in "iu" and tensor.dtype in ("int64", "int32"):
        info = np.iinfo(np.int64 if tensor.dtype == "int64" else np.int32)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise InputError(f"input {tensor.name} holds an integer beyond {tensor.dtype}'s range; {expected}")
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(target).reshape(dims)
    return _finite(cast, tensor, expected)


def check_inputs(tensors: Mapping[str, np.ndarray], entry: ModelEntry) -> tuple[dict[str, np.ndarray], int]:
    """Every input of the contract, in its order, with one row count; refuses unknown and missing ones."""
    expected = expected_text(entry)
    unknown = sorted(set(tensors) - set(entry.input_names))
    if unknown:
        raise InputError(f"unknown input {', '.join(unknown)}; {expected}")
    missing = [n for n in entry.input_names if n not in tensors]
    if missing:
        raise InputError(f"missing input {', '.join(missing)}; {expected}")
    rows = {len(a) for a in tensors.values()}
    if len(rows) > 1:
        raise InputError(f"the inputs differ in their first (batch) dimension ({sorted(rows)}); {expected}")
    return {n: tensors[n] for n in entry.input_names}, rows.pop()


def requested_outputs(outputs: Any, binary_default: bool, entry: ModelEntry) -> tuple[RequestedOutput, ...]:
    """The outputs a REST request names (every output when it names none), with their binary flag."""
    names = entry.output_names
    if outputs is None:
        return tuple(RequestedOutput(n, binary_default) for n in names)
    if not isinstance(outputs, list) or not all(isinstance(o, Mapping) for o in outputs):
        raise InputError(f'"outputs" must be a list of objects with a "name"; model {entry.name} has {_names(names)}')
    found: list[RequestedOutput] = []
    for item in outputs:
        parameters = item.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise InputError(f"output {_label(item.get('name'))}: parameters must be an object")
        binary = parameters.get("binary_data", binary_default)
        if not isinstance(binary, bool):
            raise InputError(f"output {_label(item.get('name'))}: binary_data must be true or false")
        found.append(requested_output(item.get("name"), parameters, binary, entry))
    return _unique(found, entry)


def requested_output(name: Any, parameters: Mapping[str, Any], binary: bool, entry: ModelEntry) -> RequestedOutput:
    """One requested output, checked: a known name, and no classification (duoserve answers tensors only)."""
    if name not in entry.output_names:
        raise InputError(f"unknown output {_short(name)}; model {entry.name} has {_names(entry.output_names)}")
    if parameters.get("classification"):
        raise InputError(f"output {name}: the classification extension is not supported; ask for the tensor")
    return RequestedOutput(str(name), binary)


def _unique(found: list[RequestedOutput], entry: ModelEntry) -> tuple[RequestedOutput, ...]:
    names = [o.name for o in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"output {', '.join(repeated)} requested twice; model {entry.name} has {_names(names)}")
    return tuple(found)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


# -- REST bodies ------------------------------------------------------------------------------


def header_length(value: str | None, body_size: int) -> int | None:
    """The ``Inference-Header-Content-Length`` of a body of ``body_size`` bytes, or None without the header."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("-") and _DIGITS.fullmatch(text[1:]):
        raise InputError(f"{HEADER_LENGTH} {text[:24]} is negative")
    if not _DIGITS.fullmatch(text):
        raise InputError(f"{HEADER_LENGTH} {text[:24]!r} is not a non-negative integer")
    length = int(text) if len(text) <= 18 else None  # more digits than any body could have
    if length is None or length > body_size:
        raise InputError(f"{HEADER_LENGTH} {text[:24]} points past the body's end ({body_size} bytes)")
    return length


def read_rest_request(body: bytes | bytearray, header: str | None, entry: ModelEntry) -> InferRequest:
    """A REST inference request (JSON, or JSON plus binary section), checked against ``entry``."""
    length = header_length(header, len(body))
    head = body if length is None else body[:length]
    binary = memoryview(body)[len(head) :]
    try:
        request = parse_json(head)
    except InputError as exc:
        if length is None:  # perhaps binary tensors without their header
            raise InputError(f"{exc.message} (binary tensor data needs the {HEADER_LENGTH} header)") from None
        raise
    expected = expected_text(entry)
    if not isinstance(request, Mapping):
        raise InputError(f"request must be a JSON object; {expected}")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, Mapping) for t in inputs):
        raise InputError(f'"inputs" must be a non-empty list of tensors (name, shape, datatype, data); {expected}')
    parameters = _parameters(request.get("parameters"), "request")
    may_hold_bools = b"true" in head or b"false" in head
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for item in inputs:
        name = item.get("name")
        if not isinstance(name, str):
            raise InputError(f"every input needs a string name; got {_short(name)}; {expected}")
        if name in arrays:
            raise InputError(f"input {name} appears twice; {expected}")
        try:
            tensor = entry.input(name)
        except KeyError:
            raise InputError(f"unknown input {_short(name)}; {expected}") from None
        size = _parameters(item.get("parameters"), f"input {name}").get("binary_data_size")
        if size is not None:
            if "data" in item:
                raise InputError(f"input {name} has both data and binary_data_size; send one")
            if length is None:
                raise InputError(f"input {name} has binary_data_size, but the request has no {HEADER_LENGTH} header")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InputError(f"input {name}: binary_data_size must be a non-negative integer")
            if offset + size > len(binary):
                raise InputError(
                    f"input {name}: binary_data_size {size} runs past the body's end "
                    f"({len(binary) - offset} bytes of binary data left)"
                )
            raw = binary[offset : offset + size]
            offset += size
            arrays[name] = tensor_from_bytes(tensor, item.get("datatype"), item.get("shape"), raw, entry)
        elif "data" in item:
            arrays[name] = tensor_from_values(
                tensor, item.get("datatype"), item.get("shape"), item["data"], entry, may_hold_bools=may_hold_bools
            )
        else:
            raise InputError(f"input {name} has neither data nor binary_data_size; {expected}")
    if offset != len(binary):
        raise InputError(f"the body holds {len(binary) - offset} bytes after the last binary tensor")
    ordered, rows = check_inputs(arrays, entry)
    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise InputError("parameter binary_data_output must be true or false")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InputError(f'"id" must be a string, got {_short(request_id)}')
    outputs = requested_outputs(request.get("outputs"), binary_default, entry)
    return InferRequest(ordered, rows, outputs, parameters, request_id)


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: parameters must be an object, got {_short(value)}")
    return dict(value)


def rest_response(
    entry: ModelEntry,
    arrays: Mapping[str, np.ndarray],
    outputs: Sequence[RequestedOutput],
    *,
    model_version: str | None = None,
    request_id: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """The REST answer: its body, and the length of its JSON header when binary outputs follow (else None)."""
    described: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    for wanted in outputs:
        tensor = next(t for t in entry.outputs if t.name == wanted.name)
        array = np.ascontiguousarray(arrays[wanted.name], dtype=np.dtype(NUMPY_DTYPES[tensor.dtype]).newbyteorder("<"))
        item: dict[str, Any] = {"name": tensor.name, "datatype": datatype(tensor), "shape": list(array.shape)}
        if wanted.binary:
            raw = array.tobytes()
            item["parameters"] = {"binary_data_size": len(raw)}
            buffers.append(raw)
        else:
            item["data"] = array.ravel().tolist()
        described.append(item)
    answer: dict[str, Any] = {"model_name": entry.name}
    if model_version is not None:
        answer["model_version"] = model_version
    if request_id is not None:
        answer["id"] = request_id
    if parameters:
        answer["parameters"] = dict(parameters)
    answer["outputs"] = described
    head = json.dumps(answer, separators=(",", ":")).encode()
    if not buffers:
        return head, None
    return b"".join([head, *buffers]), len(head)


def rest_request(
    arrays: Mapping[str, np.ndarray], entry: ModelEntry, *, binary_output: bool = True
) -> tuple[bytes, int]:
    """A binary REST request carrying ``arrays`` (every input as raw bytes): the body and its JSON header length."""
    described: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    for tensor in entry.inputs:
        array = np.ascontiguousarray(arrays[tensor.name], dtype=np.dtype(NUMPY_DTYPES[tensor.dtype]).newbyteorder("<"))
        raw = array.tobytes()
        described.append(
            {
                "name": tensor.name,
                "shape": list(array.shape),
                "datatype": datatype(tensor),
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        buffers.append(raw)
    head = json.dumps(
        {"inputs": described, "parameters": {"binary_data_output": binary_output}}, separators=(",", ":")
    ).encode()
    return b"".join([head, *buffers]), len(head)


def read_rest_response(body: bytes, header: str | None, entry: ModelEntry, rows: int) -> dict[str, np.ndarray]:
    """The outputs of a REST answer (JSON or binary), checked against ``entry``; :class:`OutputError` if wrong."""
    try:
        length = header_length(header, len(body))
        head = body if length is None else body[:length]
        answer = parse_json(head)
    except InputError as exc:
        raise OutputError(exc.message) from None
    items = answer.get("outputs") if isinstance(answer, Mapping) else None
    if not isinstance(items, list) or not all(isinstance(o, Mapping) for o in items):
        raise OutputError("the answer has no list of outputs")
    binary = memoryview(body)[len(head) :]
    offset = 0
    found: dict[str, np.ndarray] = {}
    for item in items:
        name = item.get("name")
        tensor = next((t for t in entry.outputs if t.name == name), None)
        if tensor is None:
            raise OutputError(f"the answer has an unknown output {_short(name)}")
        shape = item.get("shape")
        size = (item.get("parameters") or {}).get("binary_data_size")
        try:
            if size is not None:
                if not isinstance(size, int) or offset + size > len(binary):
                    raise InputError(f"binary_data_size {_short(size)} runs past the answer's end")
                raw, offset = binary[offset : offset + size], offset + size
                array = _output_from_bytes(tensor, item.get("datatype"), shape, raw)
            else:
                array = np.asarray(item.get("data"), dtype=NUMPY_DTYPES[tensor.dtype]).reshape(shape)
        except (InputError, ValueError, TypeError) as exc:
            raise OutputError(f"output {tensor.name}: {exc}") from None
        found[tensor.name] = array
    missing = [n for n in entry.output_names if n not in found]
    if missing:
        raise OutputError(f"the answer lacks output {', '.join(missing)}")
    for tensor in entry.outputs:
        got = found[tensor.name].shape
        if len(got) != len(tensor.shape) + 1 or got[0] != rows or not tensor.fits(got[1:]):
            raise OutputError(
                f"output {tensor.name} has shape {list(got)}; expected [{rows}, {tensor.shape_text()[1:]}"
            )
    return found


def _output_from_bytes(tensor: TensorSpec, got: Any, shape: Any, raw: memoryview) -> np.ndarray:
    if got != datatype(tensor):
        raise InputError(f"datatype {_short(got)}, expected {datatype(tensor)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InputError(f"shape {_short(shape)} is not a list of sizes")
    dtype = np.dtype(NUMPY_DTYPES[tensor.dtype]).newbyteorder("<")
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise InputError(f"{len(raw)} bytes for shape {shape} of {datatype(tensor)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)
