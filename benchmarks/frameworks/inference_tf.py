"""TensorFlow's in-process runtimes: Keras eager, ``tf.function``, ``tf.function(jit_compile=True)`` (XLA)
and the SavedModel signature.

Eager, ``tf.function`` and XLA wrap the Keras twin of a built-in model
(``services/tf_api/models.py``, built from the same weights file); the SavedModel
signature needs only its artifact, so it runs any model that has one, a user's too,
through the contract. This module never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from benchmarks.frameworks import article_keras
from benchmarks.frameworks.runtime import Bind, Outputs, UnavailableError, has_source, named_outputs
from contract.manifest import ModelEntry, read_manifest
from services.tf_api import models as served

KERAS_MODELS = ("mlp", "digits", "resnet")


def setup(threads: int, device: str) -> dict[str, Any]:
    """Pin the thread counts (before TF starts its runtime) and describe this side."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cuda" and not gpus:
        cuda = tf.test.is_built_with_cuda()
        raise UnavailableError(f"TensorFlow {tf.__version__} sees no GPU (built with CUDA: {cuda})")
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tf_gpus": [g.name for g in gpus],
    }


def _device(device: str) -> str:
    return "/GPU:0" if device == "cuda" else "/CPU:0"


def _bind(fn: Any, entry: ModelEntry, device: str, *, keyword: bool) -> Bind:
    def bind(arrays: dict[str, np.ndarray]) -> Any:
        def call() -> Outputs:
            with tf.device(_device(device)):
                tensors = {name: tf.constant(arrays[name]) for name in entry.input_names}
                result = fn(**tensors) if keyword else fn(*tensors.values())
                return named_outputs(entry, result, lambda t: np.asarray(t))

        return call

    return bind


def load(runtime: str, entry: ModelEntry, root: Path, device: str) -> Bind:
    """The runtime's loaded model for ``entry``; :class:`UnavailableError` says why it cannot run."""
    manifest = read_manifest(root)
    if runtime == "savedmodel":
        if "tf" not in entry.artifacts:
            raise UnavailableError(f"{entry.name} has no SavedModel artifact")
        with tf.device(_device(device)):
            loaded = tf.saved_model.load(str(manifest.verify(root, entry.name, "tf")))
        if entry.tf_signature not in loaded.signatures:
            raise UnavailableError(f"the SavedModel has no signature {entry.tf_signature!r}")

        def signature(**tensors: Any) -> Any:  # holds ``loaded``: a signature dies with its object
            return loaded.signatures[entry.tf_signature](**tensors)

        return _bind(signature, entry, device, keyword=True)
    if not has_source(entry, KERAS_MODELS):
        raise UnavailableError(f"{runtime} needs the network's source code; {entry.name} is not a built-in model")
    with tf.device(_device(device)):
        model = served.build(entry, manifest.verify(root, entry.name, "weights"))

    def eager(*x: Any) -> Any:
        return model(*x, training=False)

    if runtime == "tf_eager":
        return _bind(eager, entry, device, keyword=False)
    if runtime == "tf_function":
        return _bind(tf.function(eager), entry, device, keyword=False)
    if runtime == "tf_xla":
        return _bind(tf.function(eager, jit_compile=True), entry, device, keyword=False)
    raise UnavailableError(f"{runtime} is not a TensorFlow runtime")


def rnn(init: Path, device: str) -> dict[str, Bind]:
    """The DynamicRNN's Keras twin (``Masking``) eager, as ``tf.function`` and with XLA."""
    with tf.device(_device(device)):
        model = article_keras.build("dynamic_rnn", init)

    def eager(x: Any) -> Any:
        return model(x, training=False)

    def binder(fn: Any) -> Bind:
        def bind(arrays: dict[str, np.ndarray]) -> Any:
            def call() -> Outputs:
                with tf.device(_device(device)):
                    return {"y": np.asarray(fn(tf.constant(arrays["x"])))}

            return call

        return bind

    return {
        "tf_eager": binder(eager),
        "tf_function": binder(tf.function(eager)),
        "tf_xla": binder(tf.function(eager, jit_compile=True)),
    }
