"""What a runtime is to a worker: a loader that binds fixed inputs into a zero-argument call.

Framework-free, shared by the three framework sides. A runtime's call takes numpy in and
gives numpy out, conversions included, as a serving handler sees it; the same inputs on
every call, so the first call's outputs are the outputs of every timed call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from contract.manifest import ModelEntry

Outputs = dict[str, np.ndarray]
Call = Callable[[], Outputs]
Bind = Callable[[dict[str, np.ndarray]], Call]


class UnavailableError(Exception):
    """A runtime cannot run here or on this model; the message says why (it is printed and recorded)."""


def named_outputs(entry: ModelEntry, result: Any, to_numpy: Callable[[Any], np.ndarray]) -> Outputs:
    """A runtime's result (one tensor, a sequence in output order, or a mapping by name) as named arrays."""
    names = entry.output_names
    if isinstance(result, Mapping):
        missing = [n for n in names if n not in result]
        if missing:
            raise UnavailableError(f"outputs {sorted(result)} lack {', '.join(missing)}")
        return {n: to_numpy(result[n]) for n in names}
    if isinstance(result, Sequence) and not isinstance(result, np.ndarray):
        if len(result) != len(names):
            raise UnavailableError(f"{len(result)} outputs, the contract names {len(names)}")
        return {n: to_numpy(r) for n, r in zip(names, result, strict=True)}
    if len(names) != 1:
        raise UnavailableError(f"one output, the contract names {len(names)}")
    return {names[0]: to_numpy(result)}


def has_source(entry: ModelEntry, known: Sequence[str]) -> bool:
    """Whether eager and compiled variants apply: a built-in model whose source code is here."""
    return entry.origin == "builtin" and entry.name in known
