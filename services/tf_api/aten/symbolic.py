"""SymInts and plumbing: sizes read from tensors, Python arithmetic on them, tuple items, checks.

A SymInt is a Python int when TF knows the size statically, else a scalar int64 tensor
(``tf.shape(x)[i]``); Python's operators work on both, so ``_operator.mul`` is ``a * b``.
Runtime assertions torch.export leaves in the graph are dropped: the input signature and the
contract bound the shapes already.
"""

from __future__ import annotations

import operator
from typing import Any

from ._shapes import size
from .registry import Node, lowers


@lowers("aten.sym_size.int")
def sym_size(node: Node, x: Any, dim: int) -> Any:
    """aten::sym_size.int(Tensor self, int dim) -> SymInt"""
    return size(x, dim)


def _operator(name: str, fn: Any) -> None:
    def lower(node: Node, *args: Any) -> Any:
        return fn(*args)

    lower.__name__ = name
    lower.__doc__ = f"_operator.{name}(SymInt a, SymInt b) -> SymInt"
    lowers(f"_operator.{name}")(lower)


for _name in ("add", "sub", "mul", "floordiv", "mod"):
    _operator(_name, getattr(operator, _name))


@lowers("_operator.getitem")
def getitem(node: Node, values: Any, i: int) -> Any:
    """_operator.getitem(Tensor[] values, int i) -> Tensor"""
    value = values[i]
    if value is None:
        raise ValueError(f"item {i} of a multi-output op is not computed by the lowering (e.g. max-pool indices)")
    return value


@lowers("aten._assert_tensor_metadata.default", "aten._assert_scalar.default")
def check(node: Node, *args: Any, **kwargs: Any) -> None:
    """aten::_assert_scalar(Scalar self, str assert_msg) -> ()"""
    return None
