"""Views, reshapes, permutations, slicing, concatenation and copies: sizes may be SymInts."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import axis, int64, rank, size, sizes, strided, tensor
from .registry import Node, lowers


@lowers("aten.view.default")
def view(node: Node, x: Any, shape: list[Any]) -> tf.Tensor:
    """aten::view(Tensor(a) self, SymInt[] size) -> Tensor(a)"""
    return tf.reshape(x, sizes(shape))


@lowers("aten.permute.default")
def permute(node: Node, x: Any, dims: list[int]) -> tf.Tensor:
    """aten::permute(Tensor(a) self, int[] dims) -> Tensor(a)"""
    r = rank(x)
    return tf.transpose(x, [axis(d, r) for d in dims])


@lowers("aten.expand.default")
def expand(node: Node, x: Any, shape: list[Any], *, implicit: bool = False) -> tf.Tensor:
    """aten::expand(Tensor(a) self, SymInt[] size, *, bool implicit=False) -> Tensor(a)"""
    lead = len(shape) - rank(x)
    want = [size(x, i - lead) if isinstance(s, int) and s == -1 else s for i, s in enumerate(shape)]
    return tf.broadcast_to(x, sizes(want))


@lowers("aten.unsqueeze.default")
def unsqueeze(node: Node, x: Any, dim: int) -> tf.Tensor:
    """aten::unsqueeze(Tensor(a) self, int dim) -> Tensor(a)"""
    return tf.expand_dims(x, axis(dim, rank(x) + 1))


@lowers("aten.squeeze.dims")
def squeeze(node: Node, x: Any, dims: Any = None) -> tf.Tensor:
    """aten::squeeze.dims(Tensor(a) self, int[] dim) -> Tensor(a)"""
    r = rank(x)
    chosen = range(r) if dims is None else [dims] if isinstance(dims, int) else dims
    # torch skips a named axis whose size is not 1; only static ones of size 1 are squeezed, unless
    # torch's recorded rank says an axis of unknown size went too
    gone = [axis(d, r) for d in chosen if x.shape[axis(d, r)] == 1]
    unknown = [axis(d, r) for d in chosen if x.shape[axis(d, r)] is None]
    if node.shape is not None and r - len(gone) > len(node.shape):
        gone += unknown[: r - len(gone) - len(node.shape)]
    return tf.squeeze(x, sorted(gone)) if gone else x


@lowers("aten.select.int")
def select(node: Node, x: Any, dim: int, index: Any) -> tf.Tensor:
    """aten::select.int(Tensor(a) self, int dim, SymInt index) -> Tensor(a)"""
    d = axis(dim, rank(x))
    if isinstance(index, int) and index < 0:
        index = size(x, d) + index
    return tf.gather(x, int64(index), axis=d)


@lowers("aten.slice.Tensor")
def slice_(node: Node, x: Any, dim: int = 0, start: Any = None, end: Any = None, step: int = 1) -> tf.Tensor:
    """aten::slice.Tensor(Tensor(a) self, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1) -> Tensor(a)"""
    return strided(x, dim, start, end, step)


@lowers("aten.cat.default")
def cat(node: Node, tensors: list[Any], dim: int = 0) -> tf.Tensor:
    """aten::cat(Tensor[] tensors, int dim=0) -> Tensor"""
    dtype = node.tf_dtype
    # torch skips 1-D empty tensors in a cat of higher-rank ones (legacy behaviour)
    parts = [tensor(t, dtype) for t in tensors if not (t.shape.rank == 1 and t.shape[0] == 0)]
    return tf.concat(parts, axis=axis(dim, rank(parts[0])))


def _split(x: Any, pieces: list[Any], dim: int) -> tuple[tf.Tensor, ...]:
    out: list[tf.Tensor] = []
    start: Any = 0
    for piece in pieces:
        end = None if piece is None else start + piece
        out.append(strided(x, dim, start, end))
        start = end
    return tuple(out)


@lowers("aten.split_with_sizes.default")
def split_with_sizes(node: Node, x: Any, split_sizes: list[Any], dim: int = 0) -> tuple[tf.Tensor, ...]:
    """aten::split_with_sizes(Tensor(a -> *) self, SymInt[] split_sizes, int dim=0) -> Tensor(a)[]"""
    return _split(x, split_sizes, dim)


@lowers("aten.clone.default", "aten.alias.default")
def clone(node: Node, x: Any, *, memory_format: Any = None) -> tf.Tensor:
    """aten::clone(Tensor self, *, MemoryFormat? memory_format=None) -> Tensor"""
    return tf.identity(x)


@lowers("aten._to_copy.default")
def to_copy(node: Node, x: Any, **options: Any) -> tf.Tensor:
    """aten::_to_copy(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, bool non_blocking=False, MemoryFormat? memory_format=None) -> Tensor"""
    return tensor(x, node.tf_dtype)


@lowers("aten.constant_pad_nd.default")
def constant_pad_nd(node: Node, x: Any, pad: list[int], value: Any = 0) -> tf.Tensor:
    """aten::constant_pad_nd(Tensor self, SymInt[] pad, Scalar value=0) -> Tensor"""
    r = rank(x)
    pairs = [[0, 0] for _ in range(r)]
    for i in range(len(pad) // 2):
        pairs[r - 1 - i] = [pad[2 * i], pad[2 * i + 1]]
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError("negative padding")
    return tf.pad(x, pairs, constant_values=tensor(value, x.dtype))


@lowers("aten.repeat.default")
def repeat(node: Node, x: Any, repeats: list[Any]) -> tf.Tensor:
    """aten::repeat(Tensor self, SymInt[] repeats) -> Tensor"""
    lead = len(repeats) - rank(x)
    for _ in range(lead):
        x = tf.expand_dims(x, 0)
    return tf.tile(x, sizes(repeats))


@lowers("aten.flip.default")
def flip(node: Node, x: Any, dims: list[int]) -> tf.Tensor:
    """aten::flip(Tensor self, int[] dims) -> Tensor"""
    r = rank(x)
    return tf.reverse(x, [axis(d, r) for d in dims])
