"""Elementwise arithmetic and activations.

Binary arithmetic computes in the dtype torch recorded for the node's value (torch's type
promotion already decided it), so ``int64 / int64`` divides in float32 as torch does.
"""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from ._shapes import tensor
from .registry import Node, lowers


def _pair(node: Node, a: Any, b: Any) -> tuple[tf.Tensor, tf.Tensor]:
    dtype = node.tf_dtype
    return tensor(a, dtype), tensor(b, dtype)


@lowers("aten.add.Tensor")
def add(node: Node, a: Any, b: Any, alpha: Any = 1) -> tf.Tensor:
    """aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"""
    x, y = _pair(node, a, b)
    return x + (y if alpha == 1 else y * tensor(alpha, x.dtype))


@lowers("aten.sub.Tensor")
def sub(node: Node, a: Any, b: Any, alpha: Any = 1) -> tf.Tensor:
    """aten::sub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"""
    x, y = _pair(node, a, b)
    return x - (y if alpha == 1 else y * tensor(alpha, x.dtype))


@lowers("aten.mul.Tensor", "aten.mul.Scalar")
def mul(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::mul.Tensor(Tensor self, Tensor other) -> Tensor"""
    x, y = _pair(node, a, b)
    return tf.logical_and(x, y) if x.dtype == tf.bool else x * y


@lowers("aten.div.Tensor")
def div(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::div.Tensor(Tensor self, Tensor other) -> Tensor"""
    x, y = _pair(node, a, b)
    return x / y


@lowers("aten.div.Tensor_mode")
def div_mode(node: Node, a: Any, b: Any, *, rounding_mode: str | None = None) -> tf.Tensor:
    """aten::div.Tensor_mode(Tensor self, Tensor other, *, str? rounding_mode) -> Tensor"""
    x, y = _pair(node, a, b)
    if rounding_mode is None:
        return x / y
    if rounding_mode == "floor":
        return tf.math.floordiv(x, y)
    if x.dtype.is_floating:
        return tf.math.sign(x / y) * tf.math.floor(tf.math.abs(x / y))
    return tf.math.truncatediv(x, y)


@lowers("aten.remainder.Tensor")
def remainder(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::remainder.Tensor(Tensor self, Tensor other) -> Tensor"""
    x, y = _pair(node, a, b)
    return tf.math.floormod(x, y)


@lowers("aten.fmod.Tensor")
def fmod(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::fmod.Tensor(Tensor self, Tensor other) -> Tensor"""
    x, y = _pair(node, a, b)
    return tf.truncatemod(x, y)


@lowers("aten.pow.Tensor_Scalar", "aten.pow.Tensor_Tensor")
def pow_(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::pow.Tensor_Scalar(Tensor self, Scalar exponent) -> Tensor"""
    if isinstance(b, (int, float)) and b == 2:
        x = tensor(a, node.tf_dtype)
        return x * x
    if isinstance(b, (int, float)) and b == 0.5:
        return tf.math.sqrt(tensor(a, node.tf_dtype))
    x, y = _pair(node, a, b)
    return tf.math.pow(x, y)


@lowers("aten.maximum.default")
def maximum(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::maximum(Tensor self, Tensor other) -> Tensor"""
    x, y = _pair(node, a, b)
    return tf.math.maximum(x, y)


@lowers("aten.minimum.default")
def minimum(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::minimum(Tensor self, Tensor other) -> Tensor"""
    x, y = _pair(node, a, b)
    return tf.math.minimum(x, y)


@lowers("aten.clamp.default")
def clamp(node: Node, a: Any, low: Any = None, high: Any = None) -> tf.Tensor:
    """aten::clamp(Tensor self, Scalar? min=None, Scalar? max=None) -> Tensor"""
    x = tensor(a, node.tf_dtype)
    if low is not None:
        x = tf.math.maximum(x, tensor(low, x.dtype))
    if high is not None:
        x = tf.math.minimum(x, tensor(high, x.dtype))
    return x


@lowers("aten.hardtanh.default")
def hardtanh(node: Node, a: Any, low: float = -1.0, high: float = 1.0) -> tf.Tensor:
    """aten::hardtanh(Tensor self, Scalar min_val=-1, Scalar max_val=1) -> Tensor"""
    return clamp(node, a, low, high)


def _unary(target: str, schema: str, fn: Any) -> None:
    def lower(node: Node, a: Any) -> tf.Tensor:
        return fn(tensor(a, node.tf_dtype))

    lower.__name__ = target.split(".")[1]
    lower.__doc__ = schema
    lowers(target)(lower)


for _target, _fn in {
    "neg": tf.math.negative,
    "exp": tf.math.exp,
    "expm1": tf.math.expm1,
    "log": tf.math.log,
    "log1p": tf.math.log1p,
    "log2": lambda x: tf.math.log(x) / math.log(2.0),
    "sqrt": tf.math.sqrt,
    "rsqrt": tf.math.rsqrt,
    "abs": tf.math.abs,
    "sin": tf.math.sin,
    "cos": tf.math.cos,
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "relu": tf.nn.relu,
    "erf": tf.math.erf,
    "reciprocal": tf.math.reciprocal,
    "floor": tf.math.floor,
    "ceil": tf.math.ceil,
    "round": tf.math.round,
    "trunc": lambda x: tf.math.sign(x) * tf.math.floor(tf.math.abs(x)),
    "sign": tf.math.sign,
}.items():
    _unary(f"aten.{_target}.default", f"aten::{_target}(Tensor self) -> Tensor", _fn)


@lowers("aten.gelu.default")
def gelu(node: Node, a: Any, *, approximate: str = "none") -> tf.Tensor:
    """aten::gelu(Tensor self, *, str approximate='none') -> Tensor"""
    return tf.nn.gelu(tensor(a, node.tf_dtype), approximate=approximate == "tanh")


@lowers("aten.leaky_relu.default")
def leaky_relu(node: Node, a: Any, negative_slope: float = 0.01) -> tf.Tensor:
    """aten::leaky_relu(Tensor self, Scalar negative_slope=0.01) -> Tensor"""
    x = tensor(a, node.tf_dtype)
    return tf.where(x > 0, x, x * negative_slope)


@lowers("aten.elu.default")
def elu(node: Node, a: Any, alpha: float = 1.0, scale: float = 1.0, input_scale: float = 1.0) -> tf.Tensor:
    """aten::elu(Tensor self, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1) -> Tensor"""
    x = tensor(a, node.tf_dtype)
    return scale * tf.where(x > 0, x, alpha * tf.math.expm1(x * input_scale))


@lowers("aten._softmax.default")
def softmax(node: Node, a: Any, dim: int, half_to_float: bool = False) -> tf.Tensor:
    """aten::_softmax(Tensor self, int dim, bool half_to_float) -> Tensor"""
    return tf.nn.softmax(tensor(a, node.tf_dtype), axis=dim)


@lowers("aten._log_softmax.default")
def log_softmax(node: Node, a: Any, dim: int, half_to_float: bool = False) -> tf.Tensor:
    """aten::_log_softmax(Tensor self, int dim, bool half_to_float) -> Tensor"""
    return tf.nn.log_softmax(tensor(a, node.tf_dtype), axis=dim)
