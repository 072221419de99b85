"""The three served networks as Keras models, built from the neutral ``.npz`` weights.

The weights file holds PyTorch's ``state_dict`` in PyTorch layouts; this module is the
one place that knows how those map to Keras:

* conv kernels ``[out, in, kh, kw]`` -> ``[kh, kw, in, out]``; dense ``[out, in]`` -> ``[in, out]``;
* ``digits``' first dense layer reads a flattened NCHW tensor in PyTorch and an NHWC one
  here, so its rows are permuted from (c, h, w) to (h, w, c) order;
* PyTorch pads stride-2 convolutions symmetrically while Keras ``"same"`` pads more on
  the right, so ResNet uses explicit ``ZeroPadding2D`` and ``"valid"``; its max pool pads
  with zeros, which equals PyTorch's -inf padding because it follows a ReLU;
* BatchNorm: epsilon 1e-5 and momentum 0.9 (PyTorch's 0.1 counts the other way).

This module never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import layers

from contract.manifest import ModelEntry
from contract.weights import load_weights, require

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9
RESNET_STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2), (512, 2))

_Pending = list[tuple[layers.Layer, list[np.ndarray]]]


class _Loader:
    """Reads arrays from one weights file and remembers which layer gets which."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.arrays = load_weights(path)
        self.pending: _Pending = []

    def get(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        return require(self.arrays, key, shape, self.path)

    def dense(
        self, key: str, n_in: int, n_out: int, rows: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> layers.Dense:
        layer = layers.Dense(n_out, name=key.replace(".", "_"))
        kernel = self.get(f"{key}.weight", (n_out, n_in))
        if rows is not None:
            kernel = rows(kernel)
        self.pending.append((layer, [kernel.T, self.get(f"{key}.bias", (n_out,))]))
        return layer

    def conv(self, key: str, n_in: int, n_out: int, k: int, stride: int, bias: bool) -> layers.Conv2D:
        layer = layers.Conv2D(n_out, k, strides=stride, padding="valid", use_bias=bias, name=key.replace(".", "_"))
        kernel = self.get(f"{key}.weight", (n_out, n_in, k, k)).transpose(2, 3, 1, 0)
        weights = [kernel, self.get(f"{key}.bias", (n_out,))] if bias else [kernel]
        self.pending.append((layer, weights))
        return layer

    def batchnorm(self, key: str, n: int) -> layers.BatchNormalization:
        layer = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=key.replace(".", "_"))
        names = ("weight", "bias", "running_mean", "running_var")
        self.pending.append((layer, [self.get(f"{key}.{name}", (n,)) for name in names]))
        return layer

    def apply(self) -> None:
        for layer, weights in self.pending:
            layer.set_weights(weights)


def _mlp(w: _Loader, x: keras.KerasTensor) -> keras.KerasTensor:
    h = layers.ReLU()(w.dense("fc1", 10, 5)(x))
    return w.dense("fc2", 5, 1)(h)


def _nchw_rows_to_nhwc(channels: int, height: int, width: int) -> Callable[[np.ndarray], np.ndarray]:
    def permute(kernel: np.ndarray) -> np.ndarray:
        n_out = kernel.shape[0]
        return kernel.reshape(n_out, channels, height, width).transpose(0, 2, 3, 1).reshape(n_out, -1)

    return permute


def _digits(w: _Loader, x: keras.KerasTensor) -> keras.KerasTensor:
    h = layers.Reshape((8, 8, 1))(layers.Rescaling(1.0 / 16.0)(x))
    h = layers.ReLU()(w.conv("conv1", 1, 16, 3, 1, bias=True)(layers.ZeroPadding2D(1)(h)))
    h = layers.ReLU()(w.conv("conv2", 16, 32, 3, 1, bias=True)(layers.ZeroPadding2D(1)(h)))
    h = layers.Flatten()(layers.MaxPooling2D(2)(h))
    h = layers.ReLU()(w.dense("fc1", 32 * 4 * 4, 64, rows=_nchw_rows_to_nhwc(32, 4, 4))(h))
    return w.dense("fc2", 64, 10)(h)


def _conv_bn(
    w: _Loader, h: keras.KerasTensor, conv: str, bn: str, n_in: int, n_out: int, k: int, stride: int
) -> keras.KerasTensor:
    pad = k // 2
    if pad:
        h = layers.ZeroPadding2D(pad)(h)
    return w.batchnorm(bn, n_out)(w.conv(conv, n_in, n_out, k, stride, bias=False)(h))


def _basic_block(w: _Loader, h: keras.KerasTensor, key: str, n_in: int, n_out: int, stride: int) -> keras.KerasTensor:
    out = layers.ReLU()(_conv_bn(w, h, f"{key}.conv1", f"{key}.bn1", n_in, n_out, 3, stride))
    out = _conv_bn(w, out, f"{key}.conv2", f"{key}.bn2", n_out, n_out, 3, 1)
    shortcut = h
    if stride != 1 or n_in != n_out:
        shortcut = _conv_bn(w, h, f"{key}.downsample.0", f"{key}.downsample.1", n_in, n_out, 1, stride)
    return layers.ReLU()(layers.Add()([out, shortcut]))


def _resnet(w: _Loader, x: keras.KerasTensor) -> keras.KerasTensor:
    h = layers.ReLU()(_conv_bn(w, x, "conv1", "bn1", 3, 64, 7, 2))
    h = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(h))
    n_in = 64
    for stage, (n_out, stride) in enumerate(RESNET_STAGES, start=1):
        h = _basic_block(w, h, f"layer{stage}.0", n_in, n_out, stride)
        h = _basic_block(w, h, f"layer{stage}.1", n_out, n_out, 1)
        n_in = n_out
    h = layers.GlobalAveragePooling2D()(h)
    return w.dense("fc", 512, 1000)(h)


_BODIES: dict[str, Callable[[_Loader, keras.KerasTensor], keras.KerasTensor]] = {
    "mlp": _mlp,
    "digits": _digits,
    "resnet": _resnet,
}


def build(entry: ModelEntry, weights_path: Path, *, logits: bool = False) -> keras.Model:
    """Keras model of the built-in ``entry`` with the weights in ``weights_path``.

    Returns probabilities (sigmoid for ``mlp``, softmax otherwise), or the pre-activation
    output when ``logits`` is true. :class:`~contract.artifacts.ArtifactError`
    names the file when it is missing, corrupt or lacks an array.
    """
    (spec,), (output,) = entry.inputs, entry.outputs
    loader = _Loader(weights_path)
    x = keras.Input(shape=spec.shape, dtype=spec.dtype, name=spec.name)
    out = _BODIES[entry.name](loader, x)
    if not logits:
        out = layers.Activation("sigmoid" if entry.name == "mlp" else "softmax", name=output.name)(out)
    model = keras.Model(x, out, name=entry.name)
    loader.apply()
    return model
