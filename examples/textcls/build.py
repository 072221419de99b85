"""Build the text-classifier example: a Keras 3 model with an embedding, from the TF side.

``python -m examples.textcls.build OUT_DIR`` (the main venv, Keras on TensorFlow). Input
``tokens`` [N, T] int64 (T up to 64, ids 0-999), output ``logits`` [N, 2]. Trained for a
few steps on a seeded synthetic task (does the sequence hold more ids below 500 than above),
so the weights are not just their initialisation.

It is built twice. ``textcls_gelu.keras``, the one added, uses Keras' ``gelu`` (the exact
one): tf2onnx writes an ONNX file with an ``Erfc`` op that no ONNX opset has (and exits 0),
so duoserve makes the ONNX file from the Keras-on-torch module with torch.onnx instead.
``textcls.keras`` uses ``silu``, which every converter takes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

VOCAB, MAX_TOKENS = 1000, 64


def model(activation: str) -> Any:
    import keras

    keras.utils.set_random_seed(0)
    tokens = keras.Input((None,), dtype="int64", name="tokens")
    h = keras.layers.Embedding(VOCAB, 32)(tokens)
    h = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.LayerNormalization()(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    h = keras.layers.Dense(32, activation=activation)(h)
    logits = keras.layers.Dense(2, name="logits")(h)
    return keras.Model(tokens, logits, name="textcls")


def data(rows: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, size=(rows, steps)).astype(np.int64)
    return tokens, (np.mean(tokens < VOCAB // 2, axis=1) > 0.5).astype(np.int64)


def main(out: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    x, y = data(512, 32, seed=1)
    for activation, name in (("silu", "textcls.keras"), ("gelu", "textcls_gelu.keras")):
        m = model(activation)
        m.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(True))
        m.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False)
        m.save(out / name)
    tokens, _ = data(16, 40, seed=5)
    np.savez(out / "sample.npz", tokens=tokens)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
