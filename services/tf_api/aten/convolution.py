"""Convolution and pooling on torch's NCHW (and NCL) layout.

TF's CPU kernels take NHWC only, so each op transposes in and out; the model's inputs and
outputs keep torch's layout (the same bytes to every stack). 1-D ops run as 2-D ones with a
height of 1. Padding is explicit, so ``padding=1`` means what it means in torch.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import rank
from .registry import Node, lowers


def _pairs(value: Any, n: int) -> list[int]:
    values = [value] if isinstance(value, int) else list(value)
    return values * n if len(values) == 1 else values


def _to_nhwc(x: tf.Tensor, one_d: bool) -> tf.Tensor:
    if one_d:
        x = tf.expand_dims(x, 2)
    return tf.transpose(x, [0, 2, 3, 1])


def _to_nchw(y: tf.Tensor, one_d: bool) -> tf.Tensor:
    y = tf.transpose(y, [0, 3, 1, 2])
    return tf.squeeze(y, 2) if one_d else y


@lowers("aten.convolution.default")
def convolution(
    node: Node, x: Any, weight: Any, bias: Any, stride: list[int], padding: list[int], dilation: list[int],
    transposed: bool, output_padding: list[int], groups: int,
) -> tf.Tensor:  # fmt: skip
    """aten::convolution(Tensor input, Tensor weight, Tensor? bias, SymInt[] stride, SymInt[] padding, SymInt[] dilation, bool transposed, SymInt[] output_padding, SymInt groups) -> Tensor"""
    if transposed:
        raise ValueError("transposed convolution is not lowered")
    one_d = rank(x) == 3
    if rank(x) not in (3, 4):
        raise ValueError(f"a {rank(x) - 2}-D convolution is not lowered")
    n = 1 if one_d else 2
    stride, padding, dilation = _pairs(stride, n), _pairs(padding, n), _pairs(dilation, n)
    if one_d:
        stride, padding, dilation = [1, *stride], [0, *padding], [1, *dilation]
        weight = tf.expand_dims(weight, 2)
    h = _to_nhwc(x, one_d)
    h = tf.pad(h, [[0, 0], [padding[0], padding[0]], [padding[1], padding[1]], [0, 0]])
    kernel = tf.transpose(weight, [2, 3, 1, 0])  # [O, I/g, kh, kw] -> [kh, kw, I/g, O]
    if groups == 1:
        y = tf.nn.conv2d(h, kernel, strides=[1, *stride, 1], padding="VALID", dilations=[1, *dilation, 1])
    else:
        ins = tf.split(h, groups, axis=3)
        kernels = tf.split(kernel, groups, axis=3)
        y = tf.concat(
            [
                tf.nn.conv2d(i, k, strides=[1, *stride, 1], padding="VALID", dilations=[1, *dilation, 1])
                for i, k in zip(ins, kernels, strict=True)
            ],
            axis=3,
        )
    if bias is not None:
        y = y + bias
    return _to_nchw(y, one_d)


def _pool_padding(x: tf.Tensor, kernel: list[int], stride: list[int], padding: list[int], ceil_mode: bool) -> list[int]:
    """Extra right/bottom padding that ceil_mode adds (static spatial sizes only)."""
    extra = []
    for i, (k, s, p) in enumerate(zip(kernel, stride, padding, strict=True)):
        if not ceil_mode:
            extra.append(0)
            continue
        length = x.shape[1 + i]
        if length is None:
            raise ValueError("ceil_mode pooling over an axis of unknown size")
        span = int(length) + 2 * p - k
        out = -(-span // s) + 1
        if (out - 1) * s >= int(length) + p:  # torch: the last window must start inside the input
            out -= 1
        extra.append(max(0, (out - 1) * s + k - (int(length) + 2 * p)))
    return extra


@lowers("aten.max_pool2d_with_indices.default")
def max_pool2d_with_indices(
    node: Node, x: Any, kernel_size: list[int], stride: Any = (), padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False,
) -> tuple[tf.Tensor, None]:  # fmt: skip
    """aten::max_pool2d_with_indices(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, int[2] dilation=1, bool ceil_mode=False) -> (Tensor, Tensor)"""
    kernel = _pairs(kernel_size, 2)
    strides = _pairs(stride, 2) if stride else kernel
    pads, dil = _pairs(padding, 2), _pairs(dilation, 2)
    if dil != [1, 1]:
        raise ValueError("dilated max pooling is not lowered")
    h = _to_nhwc(x, False)
    extra = _pool_padding(h, kernel, strides, pads, ceil_mode)
    if any(pads) or any(extra):
        low = tf.constant(float("-inf"), h.dtype) if h.dtype.is_floating else h.dtype.min
        h = tf.pad(
            h, [[0, 0], [pads[0], pads[0] + extra[0]], [pads[1], pads[1] + extra[1]], [0, 0]], constant_values=low
        )
    y = tf.nn.max_pool2d(h, kernel, [1, *strides, 1], "VALID")
    return _to_nchw(y, False), None  # the indices: a graph that reads them is refused by getitem


@lowers("aten.avg_pool2d.default")
def avg_pool2d(
    node: Node, x: Any, kernel_size: list[int], stride: Any = (), padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: int | None = None,
) -> tf.Tensor:  # fmt: skip
    """aten::avg_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None) -> Tensor"""
    kernel = _pairs(kernel_size, 2)
    strides = _pairs(stride, 2) if stride else kernel
    pads = _pairs(padding, 2)
    if ceil_mode:
        raise ValueError("ceil_mode average pooling is not lowered")
    h = _to_nhwc(x, False)
    paddings = [[0, 0], [pads[0], pads[0]], [pads[1], pads[1]], [0, 0]]
    total = tf.nn.avg_pool2d(tf.pad(h, paddings), kernel, [1, *strides, 1], "VALID") * float(kernel[0] * kernel[1])
    if divisor_override:
        y = total / float(divisor_override)
    elif count_include_pad or not any(pads):
        y = total / float(kernel[0] * kernel[1])
    else:
        ones = tf.pad(tf.ones_like(h[..., :1]), paddings)
        y = total / (tf.nn.avg_pool2d(ones, kernel, [1, *strides, 1], "VALID") * float(kernel[0] * kernel[1]))
    return _to_nchw(y, False)


@lowers("aten._adaptive_avg_pool2d.default")
def adaptive_avg_pool2d(node: Node, x: Any, output_size: list[int]) -> tf.Tensor:
    """aten::_adaptive_avg_pool2d(Tensor self, SymInt[2] output_size) -> Tensor"""
    out = _pairs(output_size, 2)
    if out == [1, 1]:
        return tf.reduce_mean(x, [2, 3], keepdims=True)
    height, width = x.shape[2], x.shape[3]
    if height is None or width is None or height % out[0] or width % out[1]:
        raise ValueError("adaptive pooling to a size that does not divide the input's is not lowered")
    kernel = [height // out[0], width // out[1]]
    y = tf.nn.avg_pool2d(_to_nhwc(x, False), kernel, [1, *kernel, 1], "VALID")
    return _to_nchw(y, False)
