"""Reductions over axes (``dim=None`` or ``[]``: every axis), cumulative sums, arg-max/min."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import axis, rank, tensor
from .registry import Node, lowers


def _axes(x: tf.Tensor, dim: Any) -> list[int] | None:
    if dim is None or dim == []:
        return None
    r = rank(x)
    return [axis(d, r) for d in ([dim] if isinstance(dim, int) else dim)]


@lowers("aten.sum.dim_IntList")
def sum_(node: Node, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> tf.Tensor:
    """aten::sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor"""
    return tf.reduce_sum(tensor(x, node.tf_dtype), _axes(x, dim), keepdims=keepdim)


@lowers("aten.mean.dim")
def mean(node: Node, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> tf.Tensor:
    """aten::mean.dim(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor"""
    return tf.reduce_mean(tensor(x, node.tf_dtype), _axes(x, dim), keepdims=keepdim)


@lowers("aten.mean.default")
def mean_all(node: Node, x: Any, *, dtype: Any = None) -> tf.Tensor:
    """aten::mean(Tensor self, *, ScalarType? dtype=None) -> Tensor"""
    return tf.reduce_mean(tensor(x, node.tf_dtype))


@lowers("aten.prod.dim_int")
def prod(node: Node, x: Any, dim: int, keepdim: bool = False, *, dtype: Any = None) -> tf.Tensor:
    """aten::prod.dim_int(Tensor self, int dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor"""
    return tf.reduce_prod(tensor(x, node.tf_dtype), _axes(x, dim), keepdims=keepdim)


@lowers("aten.amax.default")
def amax(node: Node, x: Any, dim: Any = (), keepdim: bool = False) -> tf.Tensor:
    """aten::amax(Tensor self, int[1] dim=[], bool keepdim=False) -> Tensor"""
    return tf.reduce_max(x, _axes(x, list(dim)), keepdims=keepdim)


@lowers("aten.amin.default")
def amin(node: Node, x: Any, dim: Any = (), keepdim: bool = False) -> tf.Tensor:
    """aten::amin(Tensor self, int[1] dim=[], bool keepdim=False) -> Tensor"""
    return tf.reduce_min(x, _axes(x, list(dim)), keepdims=keepdim)


@lowers("aten.max.dim")
def max_dim(node: Node, x: Any, dim: int, keepdim: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
    """aten::max.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)"""
    d = axis(dim, rank(x))
    values = tf.reduce_max(x, d, keepdims=keepdim)
    indices = tf.math.argmax(x, d, output_type=tf.int64)
    return values, (tf.expand_dims(indices, d) if keepdim else indices)


@lowers("aten.min.dim")
def min_dim(node: Node, x: Any, dim: int, keepdim: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
    """aten::min.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)"""
    d = axis(dim, rank(x))
    values = tf.reduce_min(x, d, keepdims=keepdim)
    indices = tf.math.argmin(x, d, output_type=tf.int64)
    return values, (tf.expand_dims(indices, d) if keepdim else indices)


@lowers("aten.argmax.default")
def argmax(node: Node, x: Any, dim: int | None = None, keepdim: bool = False) -> tf.Tensor:
    """aten::argmax(Tensor self, int? dim=None, bool keepdim=False) -> Tensor"""
    if dim is None:
        return tf.math.argmax(tf.reshape(x, [-1]), 0, output_type=tf.int64)
    d = axis(dim, rank(x))
    out = tf.math.argmax(x, d, output_type=tf.int64)
    return tf.expand_dims(out, d) if keepdim else out


@lowers("aten.any.dim")
def any_(node: Node, x: Any, dim: Any = None, keepdim: bool = False) -> tf.Tensor:
    """aten::any.dim(Tensor self, int dim, bool keepdim=False) -> Tensor"""
    return tf.reduce_any(tensor(x, tf.bool), _axes(x, dim), keepdims=keepdim)


@lowers("aten.var.correction")
def var(node: Node, x: Any, dim: Any = None, *, correction: Any = None, keepdim: bool = False) -> tf.Tensor:
    """aten::var.correction(Tensor self, int[1]? dim=None, *, Scalar? correction=None, bool keepdim=False) -> Tensor"""
    x = tensor(x, node.tf_dtype)
    axes = _axes(x, dim)
    mean = tf.reduce_mean(x, axes, keepdims=True)
    squares = tf.reduce_sum(tf.math.square(x - mean), axes, keepdims=keepdim)
    shape = tf.shape(x, out_type=tf.int64)
    count = tf.reduce_prod(shape if axes is None else tf.gather(shape, axes))
    fix = 1.0 if correction is None else float(correction)
    return squares / (tf.cast(count, x.dtype) - fix)


@lowers("aten.cumsum.default")
def cumsum(node: Node, x: Any, dim: int, *, dtype: Any = None) -> tf.Tensor:
    """aten::cumsum(Tensor self, int dim, *, ScalarType? dtype=None) -> Tensor"""
    return tf.math.cumsum(tensor(x, node.tf_dtype), axis=axis(dim, rank(x)))


@lowers("aten.linalg_vector_norm.default")
def linalg_vector_norm(
    node: Node, x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False, *, dtype: Any = None
) -> tf.Tensor:
    """aten::linalg_vector_norm(Tensor self, Scalar ord=2, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor"""
    x = tf.math.abs(tensor(x, node.tf_dtype))
    axes = _axes(x, dim)
    if ord == float("inf"):
        return tf.reduce_max(x, axes, keepdims=keepdim)
    if ord == float("-inf"):
        return tf.reduce_min(x, axes, keepdims=keepdim)
    if ord == 0:
        return tf.reduce_sum(tf.cast(x != 0, x.dtype), axes, keepdims=keepdim)
    if ord == 1:
        return tf.reduce_sum(x, axes, keepdims=keepdim)
    if ord == 2:
        return tf.math.sqrt(tf.reduce_sum(x * x, axes, keepdims=keepdim))
    return tf.math.pow(tf.reduce_sum(tf.math.pow(x, float(ord)), axes, keepdims=keepdim), 1.0 / float(ord))
