"""TensorFlow side of ``make artifacts``: SavedModels under ``tf/<model>/<version>/``.

Each SavedModel has one signature, the model's ``tf_signature`` (``serving_default``),
whose inputs and outputs are the contract's, by name, dtype and shape (batch axis
first). The Keras model is built from the neutral weights (``services.tf_api.models``)
and checked against itself after reloading, then the version directory is swapped in
atomically. The contract comes from the manifest, which ``stack.build`` writes first.
This module never imports torch.
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

from contract.artifacts import artifact_path, atomic_dir
from contract.manifest import ModelEntry, read_manifest
from contract.tensors import sample_inputs
from services.tf_api.models import build

#: Largest difference between the Keras model and the reloaded SavedModel.
EXPORT_TOLERANCE = 1e-5


def export_savedmodel(root: Path, entry: ModelEntry) -> None:
    """Write ``tf/<name>/<version>/`` from ``weights/<name>.npz`` (a built-in model: one input, one output)."""
    model = build(entry, artifact_path(root, entry.name, "weights"))
    (spec,), (output,) = entry.inputs, entry.outputs
    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=entry.tf_signature,
        fn=lambda x: {output.name: model(x, training=False)},
        input_signature=[tf.TensorSpec([None, *spec.shape], tf.dtypes.as_dtype(spec.dtype), name=spec.name)],
    )
    check = sample_inputs(entry, 5, seed=1)[spec.name]
    expected = model(check, training=False).numpy()
    with atomic_dir(artifact_path(root, entry.name, "tf")) as tmp:
        archive.write_out(str(tmp), verbose=False)
        loaded = tf.saved_model.load(str(tmp)).signatures[entry.tf_signature]
        actual = loaded(**{spec.name: tf.constant(check)})[output.name].numpy()
        diff = float(np.abs(expected - actual).max())
        if diff > EXPORT_TOLERANCE:
            raise RuntimeError(f"{entry.name}: reloaded SavedModel differs from Keras by {diff:.2e}")


def main(argv: list[str] | None = None) -> int:
    """Command line: export the SavedModels of the given models."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--model", action="append", default=[])
    args = parser.parse_args(argv)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    manifest = read_manifest(args.root)
    for name in args.model:
        print(f"[tf] {name}: savedmodel", flush=True)
        export_savedmodel(args.root, manifest.model(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
