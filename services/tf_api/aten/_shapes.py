"""Shapes, axes and SymInts in TF: the static size where TF knows it, ``tf.shape(x)[i]`` where it does not.

A SymInt is a Python ``int`` when the size is static and a scalar ``int64`` tensor when it
is not, so that a reshape to ``[batch * seq, 32]`` keeps every size TF can know.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

#: torch's "to the end" in a slice (``sys.maxsize``) and anything past int32 means "no bound"
BIG = 2**31 - 1


def rank(x: tf.Tensor) -> int:
    r = x.shape.rank
    if r is None:
        raise ValueError("a tensor of unknown rank")
    return int(r)


def axis(d: int, r: int) -> int:
    """A torch dim (maybe negative) as a non-negative axis of a rank-``r`` tensor."""
    return d + r if d < 0 else d


def size(x: tf.Tensor, d: int) -> Any:
    """Size of axis ``d``: an int if static, else a scalar int64 tensor."""
    d = axis(d, rank(x))
    static = x.shape[d]
    return int(static) if static is not None else tf.shape(x, out_type=tf.int64)[d]


def is_static(value: Any) -> bool:
    return isinstance(value, (int, bool)) or (isinstance(value, float) and value.is_integer())


def sizes(values: Any) -> Any:
    """A list of SymInts as what tf.reshape/tf.fill take: a Python list if all static, else an int64 vector."""
    values = list(values)
    if all(isinstance(v, int) for v in values):
        return values
    return tf.stack([tf.cast(v, tf.int64) if isinstance(v, tf.Tensor) else tf.constant(v, tf.int64) for v in values])


def int64(value: Any) -> tf.Tensor:
    return tf.cast(value, tf.int64) if isinstance(value, tf.Tensor) else tf.constant(value, tf.int64)


def tensor(value: Any, dtype: tf.DType) -> tf.Tensor:
    """``value`` (a tensor or a Python scalar) as a tensor of ``dtype``."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return value if value.dtype == dtype else tf.cast(value, dtype)
    return tf.constant(value, dtype)


_ORDER = [tf.bool, tf.uint8, tf.int8, tf.int16, tf.int32, tf.int64, tf.float16, tf.bfloat16, tf.float32, tf.float64]


def common(*values: Any) -> tf.DType:
    """torch's type promotion, roughly: tensors decide; a Python float lifts an integer tensor to float32."""
    tensors = [v.dtype for v in values if isinstance(v, (tf.Tensor, tf.Variable))]
    best = max(tensors, key=_ORDER.index) if tensors else tf.float32
    if any(isinstance(v, float) for v in values) and not best.is_floating:
        return tf.float32
    if any(isinstance(v, int) and not isinstance(v, bool) for v in values) and best == tf.bool:
        return tf.int64
    return best


def strided(x: tf.Tensor, d: int, start: Any, end: Any, step: int = 1) -> tf.Tensor:
    """``x`` sliced along axis ``d`` from ``start`` to ``end`` (SymInts, negative or past the end: clamped as in Python)."""
    r = rank(x)
    d = axis(d, r)
    begin = [tf.constant(0, tf.int64)] * r
    stop = [tf.constant(0, tf.int64)] * r
    strides = [tf.constant(1, tf.int64)] * r
    begin_mask = end_mask = ((1 << r) - 1) & ~(1 << d)
    if start is None:
        begin_mask |= 1 << d
    else:
        begin[d] = int64(start if not isinstance(start, int) else max(min(start, BIG), -BIG))
    if end is None or (isinstance(end, int) and end >= BIG):
        end_mask |= 1 << d
    else:
        stop[d] = int64(end if not isinstance(end, int) else max(end, -BIG))
    strides[d] = tf.constant(step, tf.int64)
    return tf.strided_slice(
        x, tf.stack(begin), tf.stack(stop), tf.stack(strides), begin_mask=begin_mask, end_mask=end_mask
    )
