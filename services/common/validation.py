"""Turn a caller's row-format JSON into a float32 tensor, or say exactly what is wrong.

Used by the TorchServe handler (packed into every ``.mar`` as ``duoserve_validation.py``),
so it imports nothing but numpy and the standard library. Every failure is an
:class:`InputError` whose message names what was expected (the model's instance shape)
and, where there is one, the offending instance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Nesting deeper than this is refused before numpy sees it (no instance is deeper than 3).
MAX_DEPTH = 8


class InputError(ValueError):
    """The caller's input is wrong; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


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


def expected_text(name: str, shape: Sequence[int], max_batch: int) -> str:
    """How the caller should have sent it, for every error message."""
    return (
        f'model {name} expects {{"instances": [...]}} with 1 to {max_batch} instances, '
        f"each of shape {_shape_text(shape)} (float32)"
    )


def get_instances(body: Any, name: str, shape: Sequence[int], max_batch: int) -> Any:
    """The ``instances`` member of a parsed body, checked to be a non-empty, not too long list."""
    expected = expected_text(name, shape, max_batch)
    if not isinstance(body, Mapping):
        raise InputError(f"request body must be a JSON object; got {type(body).__name__}; {expected}")
    if "instances" not in body:
        raise InputError(f'request body has no "instances"; {expected}')
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InputError(f'"instances" must be a list, got {type(instances).__name__}; {expected}')
    if not instances:
        raise InputError(f'"instances" is empty; {expected}')
    if len(instances) > max_batch:
        raise InputError(f'"instances" holds {len(instances)} instances, more than {max_batch}; {expected}', 413)
    return instances


def _find_non_number(value: Any, path: str, depth: int = 0) -> str | None:
    """Path and repr of the first value in ``value`` that is not an int or float (bools count as bad)."""
    if depth > MAX_DEPTH:
        return f"{path} (nested deeper than {MAX_DEPTH} levels)"
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _find_non_number(item, f"{path}[{i}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{path} = {json.dumps(value)[:40]}"
    return None


def _nested_shape(value: Any) -> list[int] | None:
    """Shape of a regular nested list, or None if it is ragged."""
    try:
        array = np.asarray(value)  # numpy 2 refuses inhomogeneous nesting with ValueError
    except ValueError:
        return None
    return list(array.shape)


def _diagnose(instances: list[Any], want: list[int], expected: str) -> np.ndarray:
    """Find the first bad instance and raise; or return the float64 array if all are fine after all."""
    for i, instance in enumerate(instances):
        found = _find_non_number(instance, f"instances[{i}]")
        if found:
            raise InputError(f"non-numeric value at {found}; {expected}")
        got = _nested_shape(instance)
        if got is None:
            raise InputError(f"instance {i} is ragged (its rows differ in length); {expected}")
        if got != want:
            raise InputError(f"instance {i} has shape {_shape_text(got)}; {expected}")
    try:  # only numbers, right shapes: e.g. an integer beyond int64 made numpy pick 'object'
        return np.asarray(instances, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"instances could not be read as numbers ({exc}); {expected}") from None


def to_array(
    instances: list[Any], name: str, shape: Sequence[int], max_batch: int, *, may_hold_bools: bool = True
) -> np.ndarray:
    """Convert checked ``instances`` to a float32 array of shape ``[N, *shape]``.

    ``may_hold_bools=False`` lets a caller that has seen the raw body (and found no
    ``true``/``false`` in it) skip the per-element walk that catches booleans, which
    numpy would otherwise turn silently into 1.0 and 0.0.
    """
    expected = expected_text(name, shape, max_batch)
    want = list(shape)
    if may_hold_bools:
        found = _find_non_number(instances, "instances")
        if found:
            raise InputError(f"non-numeric value at {found}; {expected}")
    try:
        # No dtype: numpy's inference reveals strings ('U'), nulls and objects ('O');
        # asking for float64 would quietly turn "3" into 3.0 and null into NaN.
        array: np.ndarray | None = np.asarray(instances)
    except (ValueError, TypeError, OverflowError, RecursionError):
        array = None
    if array is None or array.dtype.kind not in "fiu" or list(array.shape[1:]) != want:
        array = _diagnose(instances, want, expected)
    with np.errstate(over="ignore"):
        result = array.astype(np.float32)
    finite = np.isfinite(result)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        where = "".join(f"[{int(i)}]" for i in bad[1:])
        raise InputError(
            f"instance {int(bad[0])} holds a value at {where or '[]'} that is NaN, infinite "
            f"or beyond float32's range; {expected}"
        )
    return result


def parse_request(raw: Any, name: str, shape: Sequence[int], max_batch: int) -> np.ndarray:
    """Raw body (bytes or str), or an already parsed one, -> float32 array ``[N, *shape]``.

    Raises :class:`InputError` for anything that is not a valid request for this model.
    """
    if isinstance(raw, (bytes, bytearray, str)):
        body = parse_json(raw)
        if isinstance(raw, str):
            may_hold_bools = "true" in raw or "false" in raw
        else:
            may_hold_bools = b"true" in raw or b"false" in raw
    else:
        body = raw
        may_hold_bools = True
    instances = get_instances(body, name, shape, max_batch)
    return to_array(instances, name, shape, max_batch, may_hold_bools=may_hold_bools)
