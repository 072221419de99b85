"""Layer, batch and group normalization as torch's native kernels define them (mean and 1/std returned too)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import rank, size, sizes
from .registry import Node, lowers


@lowers("aten.native_layer_norm.default")
def native_layer_norm(
    node: Node, x: Any, normalized_shape: list[int], weight: Any, bias: Any, eps: float
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """aten::native_layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight, Tensor? bias, float eps) -> (Tensor, Tensor, Tensor)"""
    r = rank(x)
    axes = list(range(r - len(normalized_shape), r))
    mean, variance = tf.nn.moments(x, axes, keepdims=True)
    rstd = tf.math.rsqrt(variance + eps)
    out = (x - mean) * rstd
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out, mean, rstd


def _channels(v: Any, r: int) -> Any:
    return tf.reshape(v, [1, -1] + [1] * (r - 2))


@lowers("aten._native_batch_norm_legit_no_training.default")
def batch_norm_no_training(
    node: Node, x: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, momentum: float, eps: float
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """aten::_native_batch_norm_legit_no_training(Tensor input, Tensor? weight, Tensor? bias, Tensor running_mean, Tensor running_var, float momentum, float eps) -> (Tensor, Tensor, Tensor)"""
    r = rank(x)
    scale = tf.math.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    empty = tf.zeros([0], x.dtype)
    return x * _channels(scale, r) + _channels(shift, r), empty, empty


@lowers("aten.native_group_norm.default")
def native_group_norm(
    node: Node, x: Any, weight: Any, bias: Any, n: Any, c: int, hxw: Any, group: int, eps: float
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """aten::native_group_norm(Tensor input, Tensor? weight, Tensor? bias, SymInt N, SymInt C, SymInt HxW, int group, float eps) -> (Tensor, Tensor, Tensor)"""
    r = rank(x)
    shape = tf.shape(x, out_type=tf.int64)
    grouped = tf.reshape(x, sizes([size(x, 0), group, -1]))
    mean, variance = tf.nn.moments(grouped, [2], keepdims=True)
    rstd = tf.math.rsqrt(variance + eps)
    out = tf.reshape((grouped - mean) * rstd, shape)
    if weight is not None:
        out = out * _channels(weight, r)
    if bias is not None:
        out = out + _channels(bias, r)
    return out, tf.squeeze(mean, 2), tf.squeeze(rstd, 2)
