"""SymInts and plumbing: sizes read from tensors, Python arithmetic on them, tuple items, checks.

A SymInt is a Python int when TF knows the size statically, else a scalar int64 tensor
(``tf.shape(x)[i]``); Python's operators work on both, so ``_operator.mul`` is ``a * b``.
Runtime assertions torch.export leaves in the graph are dropped: the input signature and the
contract bound the shapes already.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import tensorflow as tf

from ._shapes import size
from .registry import Node, lowers


@lowers("aten.sym_size.int")
def sym_size(node: Node, x: Any, dim: int) -> Any:
    """aten::sym_size.int(Tensor self, int dim) -> SymInt"""
    return size(x, dim)


@lowers("aten.sym_numel.default")
def sym_numel(node: Node, x: Any) -> Any:
    """aten::sym_numel(Tensor self) -> SymInt"""
    if x.shape.is_fully_defined():
        return int(x.shape.num_elements())
    return tf.size(x, out_type=tf.int64)


def _operator(name: str, fn: Any) -> None:
    def lower(node: Node, *args: Any) -> Any:
        return fn(*args)

    lower.__name__ = name
    lower.__doc__ = f"_operator.{name}(SymInt a, SymInt b) -> SymInt"
    lowers(f"_operator.{name}")(lower)


for _name in ("add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "eq", "ne", "lt", "le", "gt", "ge"):
    _operator(_name, getattr(operator, _name))


@lowers("_operator.getitem")
def getitem(node: Node, values: Any, i: int) -> Any:
    """_operator.getitem(Tensor[] values, int i) -> Tensor"""
    value = values[i]
    if value is None:
        raise ValueError(f"item {i} of a multi-output op is not computed by the lowering (e.g. max-pool indices)")
    return value


@lowers("torch.sym_max", "torch.fx.experimental.sym_node.sym_max")
def sym_max(node: Node, a: Any, b: Any) -> Any:
    """torch.sym_max(SymInt a, SymInt b) -> SymInt"""
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return tf.math.maximum(tf.cast(a, tf.int64), tf.cast(b, tf.int64))


@lowers("torch.sym_min", "torch.fx.experimental.sym_node.sym_min")
def sym_min(node: Node, a: Any, b: Any) -> Any:
    """torch.sym_min(SymInt a, SymInt b) -> SymInt"""
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return tf.math.minimum(tf.cast(a, tf.int64), tf.cast(b, tf.int64))


@lowers("math.ceil", "torch.sym_ceil")
def ceil(node: Node, a: Any) -> Any:
    """math.ceil(SymFloat a) -> SymInt"""
    if isinstance(a, (int, float)):
        return math.ceil(a)
    return tf.cast(tf.math.ceil(tf.cast(a, tf.float64)), tf.int64)


@lowers(
    "aten._assert_tensor_metadata.default", "aten._assert_scalar.default", "aten.sym_constrain_range_for_size.default",
    "aten.sym_constrain_range.default", "aten._assert_async.msg",
)  # fmt: skip
def check(node: Node, *args: Any, **kwargs: Any) -> None:
    """aten::_assert_scalar(Scalar self, str assert_msg) -> ()"""
    return None
