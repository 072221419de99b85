"""What each served model takes and returns, independent of any framework.

These specs are the single source for shapes: the exporters build models to match
them, the manifest records them, and every consumer (handlers, gateway validation,
load-test payloads) reads them back from ``artifacts/manifest.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Name of the single input tensor in every signature (TF ``serving_default``,
#: ONNX graph input, TorchServe handler).
INPUT_NAME = "x"
#: Name of the single output tensor in every signature.
OUTPUT_NAME = "probabilities"


@dataclass(frozen=True)
class ModelSpec:
    """Shape and meaning of one model's input and output (per instance, no batch axis)."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    #: Inclusive range real inputs fall in; the payload generator draws from it.
    value_range: tuple[float, float]
    #: Most instances one request may carry.
    max_batch: int
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME

    def to_json(self) -> dict[str, object]:
        """The spec as the manifest stores it (lists instead of tuples)."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["output_shape"] = list(self.output_shape)
        data["value_range"] = list(self.value_range)
        return data


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(
        name="mlp",
        description="SimpleNN: Linear(10,5)-ReLU-Linear(5,1)-Sigmoid, seeded weights",
        input_shape=(10,),
        output_shape=(1,),
        value_range=(-3.0, 3.0),
        max_batch=1024,
    ),
    "digits": ModelSpec(
        name="digits",
        description="small CNN trained on scikit-learn's 8x8 digits; pixel values 0-16",
        input_shape=(8, 8),
        output_shape=(10,),
        value_range=(0.0, 16.0),
        max_batch=512,
    ),
    "resnet": ModelSpec(
        name="resnet",
        description="ResNet-18-shaped classifier, NHWC input in [0, 1], seeded weights",
        input_shape=(224, 224, 3),
        output_shape=(1000,),
        value_range=(0.0, 1.0),
        max_batch=32,
    ),
}

MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The spec of ``name``; ``KeyError`` names the models that exist."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}") from None
