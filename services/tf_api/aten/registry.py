"""The op table: one lowering function per ATen overload, registered by its name.

``@lowers("aten.add.Tensor")`` puts a function in :data:`LOWERINGS` (as onnx2torch's
``@add_converter`` does); its docstring is the overload's schema, so the table reads as the
spec it implements. A lowering takes the node (:class:`Node`: its name and the dtype and
static shape torch recorded for its value) and the node's arguments, already resolved to
TF tensors, Python numbers or SymInts (a Python ``int`` or a scalar ``int64`` tensor), and
returns the value: a tensor, a SymInt, or a tuple of them for a multi-output op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

Lowering = Callable[..., Any]

#: overload name (``aten.add.Tensor``) -> its lowering
LOWERINGS: dict[str, Lowering] = {}

DTYPES: dict[str, tf.DType] = {
    "float32": tf.float32,
    "float64": tf.float64,
    "float16": tf.float16,
    "bfloat16": tf.bfloat16,
    "int64": tf.int64,
    "int32": tf.int32,
    "int16": tf.int16,
    "int8": tf.int8,
    "uint8": tf.uint8,
    "bool": tf.bool,
}


@dataclass(frozen=True)
class Node:
    """What a lowering knows of the node besides its arguments."""

    name: str
    target: str
    #: torch's dtype of the node's value ("float32"; a list for a tuple; None for a SymInt)
    dtype: Any = None
    #: torch's shape of the node's value, None where the axis is symbolic
    shape: Any = None

    @property
    def tf_dtype(self) -> tf.DType:
        """The value's dtype in TF (the first one's for a tuple)."""
        name = self.dtype[0] if isinstance(self.dtype, list) else self.dtype
        if name not in DTYPES:
            raise ValueError(f"node {self.name} has dtype {name}, which the lowering does not map")
        return DTYPES[name]


def lowers(*targets: str) -> Callable[[Lowering], Lowering]:
    """Register the decorated function as the lowering of each overload in ``targets``."""

    def register(fn: Lowering) -> Lowering:
        for target in targets:
            if target in LOWERINGS:
                raise ValueError(f"{target} is lowered twice: {LOWERINGS[target].__name__} and {fn.__name__}")
            LOWERINGS[target] = fn
        return fn

    return register
