"""The three models duoserve ships, as contract entries.

Their sources are code (``services/torch_api/models.py`` and their Keras twins in
``services/tf_api/models.py``); what they take and return is data, written into the
manifest by ``make artifacts`` before any exporter runs. From there on a built-in model
is read exactly like a user's model: nothing below the build knows these names.
"""

from __future__ import annotations

from contract.manifest import ModelEntry, TensorSpec

#: Name of the single input and output of every built-in model (TF ``serving_default``, ONNX graph, handler).
INPUT = "x"
OUTPUT = "probabilities"


def _entry(
    name: str, description: str, shape: tuple[int, ...], low: float, high: float, out: int, batch: int
) -> ModelEntry:
    return ModelEntry(
        name=name,
        description=description,
        origin="builtin",
        inputs=(TensorSpec(name=INPUT, dtype="float32", shape=shape, value_range=(low, high)),),
        outputs=(TensorSpec(name=OUTPUT, dtype="float32", shape=(out,)),),
        max_batch=batch,
    )


BUILTINS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        _entry("mlp", "SimpleNN: Linear(10,5)-ReLU-Linear(5,1)-Sigmoid, seeded weights", (10,), -3.0, 3.0, 1, 1024),
        _entry(
            "digits", "small CNN trained on scikit-learn's 8x8 digits; pixel values 0-16", (8, 8), 0.0, 16.0, 10, 512
        ),
        _entry(
            "resnet",
            "ResNet-18-shaped classifier, NHWC input in [0, 1], seeded weights",
            (224, 224, 3),
            0.0,
            1.0,
            1000,
            32,
        ),
    )
}
BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTINS)
