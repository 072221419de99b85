"""Embedding lookups and indexing by tensors (``gather``, ``index_select``, advanced ``index``)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import axis, rank, size, strided
from .registry import Node, lowers


def _wrap(index: tf.Tensor, length: Any) -> tf.Tensor:
    """torch's negative indices count from the end; TF's gather refuses them."""
    index = tf.cast(index, tf.int64)
    return tf.where(index < 0, index + tf.cast(length, tf.int64), index)


@lowers("aten.embedding.default")
def embedding(
    node: Node, weight: Any, indices: Any, padding_idx: int = -1, scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> tf.Tensor:  # fmt: skip
    """aten::embedding(Tensor weight, Tensor indices, SymInt padding_idx=-1, bool scale_grad_by_freq=False, bool sparse=False) -> Tensor"""
    return tf.gather(weight, tf.cast(indices, tf.int64))


@lowers("aten.index_select.default")
def index_select(node: Node, x: Any, dim: int, index: Any) -> tf.Tensor:
    """aten::index_select(Tensor self, int dim, Tensor index) -> Tensor"""
    d = axis(dim, rank(x))
    return tf.gather(x, _wrap(index, size(x, d)), axis=d)


@lowers("aten.gather.default")
def gather(node: Node, x: Any, dim: int, index: Any, *, sparse_grad: bool = False) -> tf.Tensor:
    """aten::gather(Tensor self, int dim, Tensor index, *, bool sparse_grad=False) -> Tensor"""
    r = rank(x)
    d = axis(dim, r)
    index = _wrap(index, size(x, d))
    # torch lets the index be smaller than self on the other axes: cut self down to it
    for i in range(r):
        if i != d:
            x = strided(x, i, 0, size(index, i))
    perm = [i for i in range(r) if i != d] + [d]
    back = [perm.index(i) for i in range(r)]
    picked = tf.gather(tf.transpose(x, perm), tf.transpose(index, perm), batch_dims=r - 1)
    return tf.transpose(picked, back)


@lowers("aten.index.Tensor")
def index(node: Node, x: Any, indices: list[Any]) -> tf.Tensor:
    """aten::index.Tensor(Tensor self, Tensor?[] indices) -> Tensor"""
    r = rank(x)
    used = [i for i, t in enumerate(indices) if t is not None]
    if any(indices[i].dtype == tf.bool for i in used):
        raise ValueError("indexing by a boolean mask (a data-dependent shape) is not lowered")
    if len(used) == 1:
        (d,) = used
        return tf.gather(x, _wrap(indices[d], size(x, d)), axis=d)
    wrapped = [_wrap(indices[i], size(x, i)) for i in used]
    shape = wrapped[0].shape
    common = tf.shape(wrapped[0], out_type=tf.int64)
    for w in wrapped[1:]:
        common = tf.broadcast_dynamic_shape(common, tf.shape(w, out_type=tf.int64))
        shape = tf.broadcast_static_shape(shape, w.shape)
    stacked = tf.stack([tf.broadcast_to(w, common) for w in wrapped], axis=-1)
    rest = [i for i in range(r) if i not in used]
    picked = tf.gather_nd(tf.transpose(x, used + rest), stacked)  # [*broadcast, *rest]
    consecutive = used == list(range(used[0], used[-1] + 1))
    if not consecutive or used[0] == 0:
        return picked  # torch puts the indexed axes first when they are not adjacent
    b, lead = shape.rank, used[0]
    perm = list(range(b, b + lead)) + list(range(b)) + list(range(b + lead, b + len(rest)))
    return tf.transpose(picked, perm)
