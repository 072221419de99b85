"""Matrix products (``aten.linear`` reaches core ATen as ``t``/``permute`` + ``addmm`` or ``mm``)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ._shapes import tensor
from .registry import Node, lowers


@lowers("aten.mm.default")
def mm(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::mm(Tensor self, Tensor mat2) -> Tensor"""
    return tf.linalg.matmul(a, b)


@lowers("aten.bmm.default")
def bmm(node: Node, a: Any, b: Any) -> tf.Tensor:
    """aten::bmm(Tensor self, Tensor mat2) -> Tensor"""
    return tf.linalg.matmul(a, b)


@lowers("aten.addmm.default")
def addmm(node: Node, bias: Any, a: Any, b: Any, *, beta: Any = 1, alpha: Any = 1) -> tf.Tensor:
    """aten::addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor"""
    product = tf.linalg.matmul(a, b)
    if alpha != 1:
        product = product * tensor(alpha, product.dtype)
    added = tensor(bias, product.dtype)
    return product + (added if beta == 1 else added * tensor(beta, product.dtype))
