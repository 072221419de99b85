"""Keras applications with ``weights=None``, seeded, at small inputs, saved as ``.keras``.

``python -m examples.zoo.keras_apps ARCH FILE OUT_DIR`` (the main venv, Keras 3 on TensorFlow).
Input ``[N, S, S, 3]`` float32 (NHWC, as Keras has it), output the softmax over 10 classes:
the application's own head, with ``classes=10`` so the file stays the size of its trunk.
Batch-norm statistics are calibrated on one seeded batch (see
:func:`_calibrate`). Each model keeps its own preprocessing layers (EfficientNet's and ConvNeXt's ``Normalization``,
MobileNetV3's ``Rescaling``), as a user's file would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: name -> (keras.applications function, input side in pixels; each application's smallest or near it)
APPLICATIONS: dict[str, tuple[str, int]] = {
    "efficientnetb0": ("EfficientNetB0", 32),
    "convnext_tiny": ("ConvNeXtTiny", 32),
    "resnet50v2": ("ResNet50V2", 32),
    "xception": ("Xception", 71),
    "mobilenetv3s": ("MobileNetV3Small", 32),
    "nasnetmobile": ("NASNetMobile", 32),
}


def model(name: str) -> Any:
    import keras

    function, side = APPLICATIONS[name]
    keras.utils.set_random_seed(0)
    image = keras.Input((side, side, 3), name="image")
    m = getattr(keras.applications, function)(weights=None, input_tensor=image, classes=10)
    _calibrate(m, side)
    return m


def _calibrate(m: Any, side: int) -> None:
    """Batch-norm statistics from one seeded batch.

    Fresh statistics (mean 0, variance 1) let a deep net's activations shrink layer by layer
    until every image gets the same uniform softmax, and the parity check would compare
    constants. One training-mode pass with momentum 0 sets each layer's statistics to what it
    sees, so the outputs depend on the input.
    """
    import keras

    norms = [layer for layer in m._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    pixels = np.random.default_rng(1).uniform(0, 255, size=(16, side, side, 3)).astype(np.float32)
    m([pixels], training=True)
    for layer in norms:
        layer.momentum = 0.99


def main(arch: str, file: str, out: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    m = model(arch)
    m.save(out / file)
    side = APPLICATIONS[arch][1]
    # pixel values as a user sends them (0-255); each application scales them itself
    pixels = np.random.default_rng(3).uniform(0, 255, size=(4, side, side, 3)).astype(np.float32)
    np.savez(out / "sample.npz", image=pixels)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
