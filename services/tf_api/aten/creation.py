"""Tensors made from sizes and scalars: ``full``, ``arange``, ``scalar_tensor``, ``*_like``."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import int64, sizes, tensor
from .registry import Node, lowers


@lowers("aten.full.default")
def full(node: Node, size: list[Any], fill_value: Any, **options: Any) -> tf.Tensor:
    """aten::full(SymInt[] size, Scalar fill_value, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor"""
    return tf.fill(sizes(size), tensor(fill_value, node.tf_dtype))


@lowers("aten.full_like.default")
def full_like(node: Node, x: Any, fill_value: Any, **options: Any) -> tf.Tensor:
    """aten::full_like(Tensor self, Scalar fill_value, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor"""
    return tf.fill(tf.shape(x), tensor(fill_value, node.tf_dtype))


@lowers("aten.scalar_tensor.default")
def scalar_tensor(node: Node, value: Any, **options: Any) -> tf.Tensor:
    """aten::scalar_tensor(Scalar s, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor"""
    return tensor(value, node.tf_dtype)


@lowers("aten.arange.start_step")
def arange(node: Node, *bounds: Any, **options: Any) -> tf.Tensor:
    """aten::arange.start_step(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor"""
    start, end, step = (0, bounds[0], 1) if len(bounds) == 1 else (*bounds, 1)[:3]
    dtype = node.tf_dtype
    if dtype.is_integer:
        return tf.cast(tf.range(int64(start), int64(end), int64(step)), dtype)
    return tf.range(tensor(start, dtype), tensor(end, dtype), tensor(step, dtype))
