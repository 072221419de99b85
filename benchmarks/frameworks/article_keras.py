"""The article's programs in Keras, run as it wrote them: ``compile`` then ``fit``.

The twins of :mod:`benchmarks.frameworks.article_torch`, built from the initial weights
that side wrote (PyTorch ``state_dict`` layouts, converted here as
``services/tf_api/models.py`` does), so both frameworks start from the same numbers:

* dense kernels ``[out, in]`` -> ``[in, out]``;
* the GRU's gates: PyTorch stacks (reset, update, new), Keras (update, reset, new); with
  ``reset_after=True`` (Keras' default) the two compute the same cell, input and recurrent
  biases kept apart;
* variable lengths: PyTorch packs the padded batch; Keras masks the padding with
  ``Masking(0.0)``, and a masked GRU carries each sequence's state past its end.

Same data in the same order (``tf.data`` over the epochs :mod:`benchmarks.frameworks.data`
drew), same batch size and optimizer settings (Adam 1e-3 with PyTorch's epsilon 1e-8).
This module never imports torch.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from benchmarks.frameworks import data
from benchmarks.frameworks.data import Epochs
from contract.weights import load_weights, require
from services.tf_api import models as served
from stack.builtins import BUILTINS

LR = 1e-3
EPS = 1e-8
DIGITS_LR = 3e-3
DIGITS_WEIGHT_DECAY = 1e-2


def _dense(weights: dict[str, np.ndarray], key: str, n_in: int, n_out: int, path: Path, **kwargs: Any) -> Any:
    layer = layers.Dense(n_out, **kwargs)
    layer.build((None, n_in))
    layer.set_weights(
        [require(weights, f"{key}.weight", (n_out, n_in), path).T, require(weights, f"{key}.bias", (n_out,), path)]
    )
    return layer


def _gates(array: np.ndarray, hidden: int) -> np.ndarray:
    """PyTorch's (reset, update, new) blocks along axis 0 to Keras' (update, reset, new)."""
    r, z, n = array[:hidden], array[hidden : 2 * hidden], array[2 * hidden :]
    return np.concatenate([z, r, n])


def gru_weights(weights: dict[str, np.ndarray], path: Path) -> list[np.ndarray]:
    """Keras GRU weights (kernel, recurrent kernel, biases) from PyTorch's ``rnn.*_l0`` arrays."""
    h, f = data.RNN_HIDDEN, data.RNN_FEATURES
    w_ih = require(weights, "rnn.weight_ih_l0", (3 * h, f), path)
    w_hh = require(weights, "rnn.weight_hh_l0", (3 * h, h), path)
    b_ih = require(weights, "rnn.bias_ih_l0", (3 * h,), path)
    b_hh = require(weights, "rnn.bias_hh_l0", (3 * h,), path)
    return [_gates(w_ih, h).T, _gates(w_hh, h).T, np.stack([_gates(b_ih, h), _gates(b_hh, h)])]


def build(name: str, path: Path) -> keras.Model:
    """The Keras twin of training program ``name`` with the weights in ``path`` (logits; SimpleNN's sigmoid)."""
    weights = load_weights(path)
    if name == "simplenn":
        x = keras.Input((data.SIMPLENN_FEATURES,), name="x")
        h = _dense(weights, "fc1", 10, 5, path, activation="relu")(x)
        return keras.Model(x, _dense(weights, "fc2", 5, 1, path, activation="sigmoid")(h), name=name)
    if name == "dense784":
        x = keras.Input((data.DENSE_SIDE**2,), name="x")
        h = _dense(weights, "fc1", data.DENSE_SIDE**2, 128, path, activation="relu")(x)
        return keras.Model(x, _dense(weights, "fc2", 128, 10, path)(h), name=name)
    if name == "digits_cnn":
        return served.build(BUILTINS["digits"], path, logits=True)
    if name == "dynamic_rnn":
        x = keras.Input((data.RNN_MAX_LEN, data.RNN_FEATURES), name="x")
        gru = layers.GRU(data.RNN_HIDDEN, reset_after=True)
        h = gru(layers.Masking(0.0)(x))
        gru.set_weights(gru_weights(weights, path))
        return keras.Model(x, _dense(weights, "fc", data.RNN_HIDDEN, 1, path)(h), name=name)
    raise KeyError(f"unknown training program {name!r}")


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """PyTorch's ``OneCycleLR`` (cosine, two phases, ``pct_start`` 0.3, ``div_factor`` 25, ``final_div_factor`` 1e4)."""

    def __init__(self, max_lr: float, total_steps: int) -> None:
        self.max_lr = max_lr
        self.total_steps = total_steps
        self.initial = max_lr / 25.0
        self.final = self.initial / 1e4
        self.warm_end = float(0.3 * total_steps) - 1.0

    def __call__(self, step: Any) -> Any:
        step = tf.cast(step, tf.float32)

        def anneal(start: float, end: float, pct: Any) -> Any:
            return end + (start - end) / 2.0 * (tf.cos(math.pi * pct) + 1.0)

        rising = anneal(self.initial, self.max_lr, step / self.warm_end)
        falling = anneal(self.max_lr, self.final, (step - self.warm_end) / (self.total_steps - 1 - self.warm_end))
        return tf.where(step <= self.warm_end, rising, falling)

    def get_config(self) -> dict[str, Any]:
        return {"max_lr": self.max_lr, "total_steps": self.total_steps}


def compile_for_training(model: keras.Model, name: str, total_steps: int) -> None:
    """The article's ``compile``: its loss and Adam (AdamW and one-cycle for the digits CNN)."""
    if name == "digits_cnn":
        schedule = OneCycle(DIGITS_LR, total_steps)
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=DIGITS_WEIGHT_DECAY, epsilon=EPS)
    else:
        optimizer = keras.optimizers.Adam(LR, epsilon=EPS)
    if name == "simplenn":
        loss: Any = "binary_crossentropy"
    elif name in ("dense784", "digits_cnn"):
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)


def dataset(epochs: Epochs) -> tf.data.Dataset:
    """Every epoch's rows in order, batched per epoch (a short last batch, as in PyTorch), one after another."""
    slices = tf.data.Dataset.from_tensor_slices((epochs.x, epochs.y))
    return slices.flat_map(lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)).batch(epochs.batch))


class _Clock(keras.callbacks.Callback):  # type: ignore[misc]
    """Per-epoch wall time and loss; held-out accuracy (not timed), stopping at a target."""

    def __init__(self, epochs: Epochs, target: float | None) -> None:
        super().__init__()
        self.data = epochs
        self.target = target
        self.epoch_s: list[float] = []
        self.losses: list[float] = []
        self.accuracy: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_s.append(time.perf_counter() - self._start)
        self.losses.append(float((logs or {})["loss"]))
        if self.data.x_test is not None and self.data.y_test is not None:
            predicted = np.asarray(self.model(self.data.x_test, training=False)).argmax(axis=1)
            self.accuracy.append(float((predicted == self.data.y_test).mean()))
            if self.target is not None and self.accuracy[-1] >= self.target:
                self.model.stop_training = True


def train(name: str, epochs: Epochs, init: Path, target: float | None = None) -> dict[str, Any]:
    """``fit`` the twin of ``name`` from the initial weights in ``init``; per-epoch time, loss, accuracy."""
    model = build(name, init)
    compile_for_training(model, name, epochs.epochs * epochs.steps)
    clock = _Clock(epochs, target)
    model.fit(
        dataset(epochs), epochs=epochs.epochs, steps_per_epoch=epochs.steps, shuffle=False, verbose=0, callbacks=[clock]
    )
    return {
        "epoch_s": clock.epoch_s,
        "losses": clock.losses,
        "accuracy": clock.accuracy,
        "jit_compile": bool(getattr(model, "jit_compile", False)),
    }


def forward(model: keras.Model, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The twin's output on the check batch (the RNN reads only the padded ``x``)."""
    return np.asarray(model(arrays["x"], training=False))
