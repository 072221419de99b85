"""A SavedModel written with ``tf.Module`` and ``tf.function`` (no Keras): a gated sequence pooler.

``python -m examples.zoo.tf_module pooler DIR OUT_DIR`` (DIR: the SavedModel directory; the main venv, TensorFlow).
``serving_default``: ``x`` [N, T, 8] float32 (T dynamic) -> ``scores`` [N, 3]. Variables
are seeded ``tf.Variable``s; the graph is the kind a TF user writes by hand: a dense
projection, a softmax attention over time, layer normalisation, a tanh head.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

FEATURES, HIDDEN, CLASSES, MAX_STEPS = 8, 16, 3, 40


def build() -> Any:
    import tensorflow as tf

    class Pooler(tf.Module):  # type: ignore[misc]  # TensorFlow has no type information
        def __init__(self) -> None:
            super().__init__(name="pooler")
            rng = np.random.default_rng(0)

            def var(*shape: int, scale: float) -> Any:
                return tf.Variable((scale * rng.standard_normal(shape)).astype(np.float32))

            self.w_in, self.b_in = var(FEATURES, HIDDEN, scale=0.4), var(HIDDEN, scale=0.1)
            self.w_att = var(HIDDEN, 1, scale=0.4)
            self.w_out, self.b_out = var(HIDDEN, CLASSES, scale=0.4), var(CLASSES, scale=0.1)

        @tf.function(input_signature=[tf.TensorSpec([None, None, FEATURES], tf.float32, name="x")])
        def __call__(self, x: Any) -> dict[str, Any]:
            h = tf.nn.relu(tf.einsum("ntf,fh->nth", x, self.w_in) + self.b_in)
            weights = tf.nn.softmax(tf.einsum("nth,hk->ntk", h, self.w_att), axis=1)
            pooled = tf.reduce_sum(weights * h, axis=1)
            mean, var = tf.nn.moments(pooled, axes=[1], keepdims=True)
            normed = (pooled - mean) / tf.sqrt(var + 1e-5)
            return {"scores": tf.tanh(tf.matmul(normed, self.w_out) + self.b_out)}

    return Pooler()


def main(arch: str, file: str, out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    module = build()
    tf.saved_model.save(module, str(out / file), signatures={"serving_default": module.__call__})
    x = np.random.default_rng(4).standard_normal((8, 23, FEATURES)).astype(np.float32)
    np.savez(out / "sample.npz", x=x)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
