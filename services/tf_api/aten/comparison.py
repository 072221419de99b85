"""Comparisons, logical and bitwise ops, ``where``: both sides promoted to one dtype as torch does."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import common, tensor
from .registry import Node, lowers


def _compare(target: str, fn: Any) -> None:
    def lower(node: Node, a: Any, b: Any) -> tf.Tensor:
        dtype = common(a, b)
        return fn(tensor(a, dtype), tensor(b, dtype))

    name = target.split(".")[1]
    lower.__name__ = name
    lower.__doc__ = f"aten::{name}.{target.split('.')[2]}(Tensor self, {'Scalar' if 'Scalar' in target else 'Tensor'} other) -> Tensor"
    lowers(target)(lower)


for _name, _fn in {
    "eq": tf.math.equal,
    "ne": tf.math.not_equal,
    "lt": tf.math.less,
    "le": tf.math.less_equal,
    "gt": tf.math.greater,
    "ge": tf.math.greater_equal,
}.items():
    for _overload in ("Tensor", "Scalar"):
        _compare(f"aten.{_name}.{_overload}", _fn)


def _bool_or_int(node: Node, a: Any, b: Any) -> tuple[tf.Tensor, tf.Tensor]:
    dtype = node.tf_dtype
    return tensor(a, dtype), tensor(b, dtype)


@lowers("aten.logical_not.default")
def logical_not(node: Node, a: Any) -> tf.Tensor:
    """aten::logical_not(Tensor self) -> Tensor"""
    return tf.math.logical_not(tensor(a, tf.bool))


@lowers("aten.logical_and.default")
def logical_and(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::logical_and(Tensor self, Tensor other) -> Tensor"""
    return tf.math.logical_and(tensor(a, tf.bool), tensor(b, tf.bool))


@lowers("aten.logical_or.default")
def logical_or(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::logical_or(Tensor self, Tensor other) -> Tensor"""
    return tf.math.logical_or(tensor(a, tf.bool), tensor(b, tf.bool))


@lowers("aten.bitwise_and.Tensor")
def bitwise_and(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::bitwise_and.Tensor(Tensor self, Tensor other) -> Tensor"""
    x, y = _bool_or_int(node, a, b)
    return tf.math.logical_and(x, y) if x.dtype == tf.bool else tf.bitwise.bitwise_and(x, y)


@lowers("aten.bitwise_or.Tensor")
def bitwise_or(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::bitwise_or.Tensor(Tensor self, Tensor other) -> Tensor"""
    x, y = _bool_or_int(node, a, b)
    return tf.math.logical_or(x, y) if x.dtype == tf.bool else tf.bitwise.bitwise_or(x, y)


@lowers("aten.bitwise_not.default")
def bitwise_not(node: Node, a: Any) -> tf.Tensor:
    """aten::bitwise_not(Tensor self) -> Tensor"""
    x = tensor(a, node.tf_dtype)
    return tf.math.logical_not(x) if x.dtype == tf.bool else tf.bitwise.invert(x)


@lowers("aten.where.self")
def where(node: Node, condition: Any, a: Any, b: Any) -> tf.Tensor:
    """aten::where.self(Tensor condition, Tensor self, Tensor other) -> Tensor"""
    dtype = node.tf_dtype
    return tf.where(tensor(condition, tf.bool), tensor(a, dtype), tensor(b, dtype))


@lowers("aten.isnan.default")
def isnan(node: Node, a: Any) -> tf.Tensor:
    """aten::isnan(Tensor self) -> Tensor"""
    x = tensor(a, common(a))
    return tf.math.is_nan(x) if x.dtype.is_floating else tf.zeros_like(x, tf.bool)
