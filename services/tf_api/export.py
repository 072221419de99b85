"""TensorFlow side of ``make artifacts``: SavedModels under ``tf/<model>/<version>/``.

Each SavedModel has one ``serving_default`` signature: input ``x`` (float32,
``[None, *input_shape]``), output ``probabilities`` (float32, ``[None, *output_shape]``).
The Keras model is built from the neutral weights (``services.tf_api.models``) and
checked against itself after reloading, then the version directory is swapped in
atomically. This module never imports torch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from keras.export import ExportArchive

from services.common import specs
from services.common.artifacts import artifact_path, atomic_dir
from services.tf_api.models import build

SIGNATURE = "serving_default"
#: Largest difference between the Keras model and the reloaded SavedModel.
EXPORT_TOLERANCE = 1e-5


def export_savedmodel(root: Path, name: str) -> None:
    """Write ``tf/<name>/<version>/`` from ``weights/<name>.npz``."""
    spec = specs.get_spec(name)
    model = build(name, artifact_path(root, name, "weights"))
    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda x: {spec.output_name: model(x, training=False)},
        input_signature=[tf.TensorSpec([None, *spec.input_shape], tf.float32, name=spec.input_name)],
    )
    low, high = spec.value_range
    check = np.random.default_rng(1).uniform(low, high, size=(5, *spec.input_shape)).astype(np.float32)
    expected = model(check, training=False).numpy()
    with atomic_dir(artifact_path(root, name, "tf")) as tmp:
        archive.write_out(str(tmp), verbose=False)
        loaded = tf.saved_model.load(str(tmp)).signatures[SIGNATURE]
        actual = loaded(**{spec.input_name: tf.constant(check)})[spec.output_name].numpy()
        diff = float(np.abs(expected - actual).max())
        if diff > EXPORT_TOLERANCE:
            raise RuntimeError(f"{name}: reloaded SavedModel differs from Keras by {diff:.2e}")


def main(argv: list[str] | None = None) -> int:
    """Command line: export the SavedModels of the given models."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--model", action="append", default=[])
    args = parser.parse_args(argv)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    for name in args.model:
        specs.get_spec(name)
        print(f"[tf] {name}: savedmodel", flush=True)
        export_savedmodel(args.root, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
