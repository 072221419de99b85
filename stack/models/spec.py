"""What a brought model takes and returns: its declared signature, the user's ``--input`` specs, one contract.

A source declares what it can (ONNX: names, dtypes, shapes with named dynamic axes; a
torch.export program: shapes with ranges; a SavedModel or ``.keras``: names, dtypes, shapes
with ``None``; TorchScript: only argument names). ``--input NAME:SHAPE:DTYPE[:LOW:HIGH]``
fills in the rest (``-1`` marks a dynamic axis; the first axis is the batch); a spec that
contradicts the model is refused, naming the input and the difference. A dynamic axis
other than the batch needs a maximum: from the model (a torch.export range) or
``--max-length``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from contract.manifest import DTYPES, NAME_PATTERN, TensorSpec

#: dtype names the converters report, in numpy's or TF's words, -> the contract's.
_ALIASES = {
    "float": "float32",
    "float32": "float32",
    "half": "float16",
    "float16": "float16",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "bool": "bool",
}
_UNSUPPORTED = {"string", "str", "object", "bytes", "float64", "double", "complex64", "uint8", "int8", "int16"}


class RefusedError(Exception):
    """A model, a file or an option cannot be taken; the message is the one line the user reads."""


@dataclass(frozen=True)
class Declared:
    """One tensor as the source declares it; unknowns are None (``shape`` entries None or -1 = dynamic)."""

    name: str
    dtype: str | None
    shape: tuple[int | None, ...] | None
    max_shape: tuple[int | None, ...] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Declared:
        shape = data.get("shape")
        max_shape = data.get("max_shape")
        return cls(
            name=str(data["name"]),
            dtype=data.get("dtype"),
            shape=None if shape is None else tuple(None if d is None or d < 0 else int(d) for d in shape),
            max_shape=None if max_shape is None else tuple(None if d is None else int(d) for d in max_shape),
        )


@dataclass(frozen=True)
class InputOption:
    """One ``--input NAME:SHAPE:DTYPE[:LOW:HIGH]``: SHAPE includes the batch axis (``-1``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    value_range: tuple[float, float] | None


def dtype_of(name: str | None, what: str) -> str | None:
    """The contract's dtype for a converter's dtype name; string and other dtypes are refused."""
    if name is None:
        return None
    key = name.lower().removeprefix("torch.").removeprefix("tf.").removeprefix("dt_")
    if key in _UNSUPPORTED or "string" in key:
        kind = "string tensors are" if key in ("string", "str", "bytes", "object") or "string" in key else f"{key} is"
        raise RefusedError(f"{what} is {key}: {kind} not supported (duoserve serves {', '.join(DTYPES)} tensors)")
    if key not in _ALIASES:
        raise RefusedError(f"{what} has dtype {name}, which duoserve does not serve ({', '.join(DTYPES)})")
    return _ALIASES[key]


def parse_input_option(text: str) -> InputOption:
    """``ids:-1,-1:int64:0:30521`` -> an :class:`InputOption`; RefusedError saying what is wrong."""
    parts = text.split(":")
    if len(parts) not in (3, 5):
        raise RefusedError(f"--input {text!r}: expected NAME:SHAPE:DTYPE or NAME:SHAPE:DTYPE:LOW:HIGH")
    name, shape_text, dtype_text = parts[:3]
    if not re.fullmatch(NAME_PATTERN, name):
        raise RefusedError(f"--input {text!r}: {name!r} is not a tensor name (letters, digits, _; not first a digit)")
    try:
        shape = tuple(int(d) for d in shape_text.split(","))
    except ValueError:
        raise RefusedError(f"--input {text!r}: SHAPE must be comma-separated integers, -1 for a dynamic axis") from None
    if not shape or shape[0] != -1:
        raise RefusedError(f"--input {text!r}: the first axis is the batch axis; write -1 for it")
    if any(d == 0 or d < -1 for d in shape):
        raise RefusedError(f"--input {text!r}: every axis is -1 (dynamic) or a size >= 1")
    dtype = dtype_of(dtype_text, f"--input {name}")
    assert dtype is not None
    value_range: tuple[float, float] | None = None
    if len(parts) == 5:
        try:
            value_range = (float(parts[3]), float(parts[4]))
        except ValueError:
            raise RefusedError(f"--input {text!r}: LOW and HIGH must be numbers") from None
    return InputOption(name, shape, dtype, value_range)


def merge_inputs(
    declared: list[Declared], options: list[InputOption], max_length: int | None
) -> tuple[TensorSpec, ...]:
    """The contract's inputs: the model's declaration completed (never contradicted) by ``--input``."""
    given = {o.name: o for o in options}
    if len(given) != len(options):
        raise RefusedError("--input names an input twice")
    names = [d.name for d in declared]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise RefusedError(
            f"--input {unknown[0]}: the model has no input {unknown[0]!r} (its inputs: {', '.join(names)})"
        )
    specs: list[TensorSpec] = []
    for tensor in declared:
        option = given.get(tensor.name)
        dtype = tensor.dtype
        if option is not None:
            if dtype is not None and dtype != option.dtype:
                raise RefusedError(
                    f"--input {tensor.name}: dtype {option.dtype} contradicts the model, which declares {dtype}"
                )
            dtype = option.dtype
        if dtype is None:
            raise RefusedError(
                f"input {tensor.name}: the model does not declare its dtype and shape; give them with "
                f"--input {tensor.name}:SHAPE:DTYPE (e.g. {tensor.name}:-1,3,224,224:float32)"
            )
        shape = _shape(tensor, option)
        specs.append(_spec(tensor, shape, dtype, option, max_length))
    return tuple(specs)


def _shape(tensor: Declared, option: InputOption | None) -> tuple[int | None, ...]:
    if option is None:
        if tensor.shape is None:
            raise RefusedError(
                f"input {tensor.name}: the model does not declare its shape; give it with "
                f"--input {tensor.name}:SHAPE:{tensor.dtype or 'DTYPE'}"
            )
        return tensor.shape
    wanted = tuple(None if d == -1 else d for d in option.shape)
    if tensor.shape is not None:
        if len(tensor.shape) != len(wanted):
            raise RefusedError(
                f"--input {tensor.name}: {len(wanted)} axes contradict the model's {len(tensor.shape)} "
                f"({_text(tensor.shape)})"
            )
        for axis, (model_dim, given_dim) in enumerate(zip(tensor.shape, wanted, strict=True)):
            if model_dim is not None and given_dim is not None and model_dim != given_dim:
                raise RefusedError(
                    f"--input {tensor.name}: axis {axis} is {given_dim} but the model's is {model_dim} "
                    f"({_text(tensor.shape)})"
                )
            if model_dim is not None and given_dim is None and axis > 0:
                raise RefusedError(
                    f"--input {tensor.name}: axis {axis} is dynamic (-1) but the model's is {model_dim} "
                    f"({_text(tensor.shape)})"
                )
        return tuple(g if g is not None else m for m, g in zip(tensor.shape, wanted, strict=True))
    return wanted


def _spec(
    tensor: Declared, shape: tuple[int | None, ...], dtype: str, option: InputOption | None, max_length: int | None
) -> TensorSpec:
    if not shape:
        raise RefusedError(f"input {tensor.name} is a scalar; duoserve needs a batch axis first")
    if shape[0] is not None and option is None:
        raise RefusedError(
            f"input {tensor.name} has a fixed batch size {shape[0]} ({_text(shape)}); export the model with a "
            "dynamic batch axis"
        )
    per_instance = shape[1:]
    declared_max = tensor.max_shape[1:] if tensor.max_shape is not None else (None,) * len(per_instance)
    dims: list[int] = []
    maxima: list[int] = []
    for axis, (dim, most) in enumerate(zip(per_instance, declared_max, strict=True), start=1):
        if dim is not None:
            dims.append(dim)
            maxima.append(dim)
            continue
        limit = most or max_length
        if limit is None:
            raise RefusedError(
                f"input {tensor.name}: axis {axis} is dynamic; declare its maximum with --max-length N "
                "(e.g. the longest sequence the model takes)"
            )
        dims.append(-1)
        maxima.append(limit)
    return TensorSpec(
        name=tensor.name,
        dtype=dtype,
        shape=tuple(dims),
        max_shape=tuple(maxima) if -1 in dims else None,
        value_range=option.value_range if option is not None else None,
    )


def _text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def sanitize(names: list[str]) -> dict[str, str]:
    """Tensor names as the contract takes them (JSON keys, TF signature keys): letters, digits, ``_``."""
    out: dict[str, str] = {}
    for name in names:
        clean = re.sub(r"[^A-Za-z0-9_]", "_", name.split(":")[0]).strip("_") or "t"
        if not re.match(r"[A-Za-z_]", clean):
            clean = f"t_{clean}"
        clean, base, n = clean[:64], clean[:60], 1
        while clean in out.values():
            n += 1
            clean = f"{base}_{n}"
        out[name] = clean
    return out
