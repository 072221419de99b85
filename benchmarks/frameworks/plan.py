"""What one run measures: models, batch sizes, epochs, repeats, threads, device (no framework imported).

The parent builds a :class:`Plan` from the command line and hands it to each framework's
worker as JSON, so every worker runs exactly the same settings and the report can print
them next to the figures.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Device = Literal["cpu", "cuda"]
Framework = Literal["pytorch", "onnxruntime", "tensorflow"]
FRAMEWORKS: tuple[Framework, ...] = ("pytorch", "onnxruntime", "tensorflow")

#: Every in-process runtime, in report order, with the framework whose worker runs it.
RUNTIMES: dict[str, Framework] = {
    "torch_eager": "pytorch",
    "torchscript": "pytorch",
    "torch_compile": "pytorch",
    "onnxruntime": "onnxruntime",
    "tf_eager": "tensorflow",
    "tf_function": "tensorflow",
    "tf_xla": "tensorflow",
    "savedmodel": "tensorflow",
}
#: Runtimes that need only an artifact (any model with that artifact, a user's too), and which artifact.
ARTIFACT_RUNTIMES: dict[str, str] = {"torchscript": "torchscript", "onnxruntime": "onnx", "savedmodel": "tf"}
#: What each runtime is, in words, for the report.
RUNTIME_TEXT: dict[str, str] = {
    "torch_eager": "PyTorch eager (nn.Module, inference_mode)",
    "torchscript": "TorchScript (the traced artifact TorchServe serves)",
    "torch_compile": "torch.compile (inductor)",
    "onnxruntime": "ONNX Runtime (the exported artifact)",
    "tf_eager": "Keras/TF eager (model(x))",
    "tf_function": "tf.function",
    "tf_xla": "tf.function(jit_compile=True) (XLA)",
    "savedmodel": "SavedModel signature serving_default (what TF Serving serves)",
}
#: The article's training programs and the digits CNN, in report order.
TRAINING_MODELS: tuple[str, ...] = ("simplenn", "dense784", "digits_cnn", "dynamic_rnn")
FULL_BATCHES: tuple[int, ...] = (1, 8, 64, 256)
RESNET_BATCHES: tuple[int, ...] = (1, 8, 32)


@dataclass
class Training:
    """Epochs and repeats of each training program."""

    repeats: int = 3
    simplenn_epochs: int = 5
    dense784_epochs: int = 5
    #: The digits CNN's one-cycle schedule spans this many epochs; training stops at the target accuracy.
    digits_epochs: int = 40
    digits_target: float = 0.98
    digits_repeats: int = 2
    rnn_epochs: int = 3
    rnn_sequences: int = 1024


@dataclass
class Timing:
    """How inference is timed: warm-up calls (not counted), then repeats of about ``repeat_s`` seconds each."""

    warmup_calls: int = 10
    repeats: int = 3
    repeat_s: float = 1.0
    min_calls: int = 5
    max_calls: int = 5000


@dataclass
class Plan:
    """Everything a worker needs to know; JSON in both directions."""

    device: Device = "cpu"
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    seed: int = 0
    quick: bool = False
    artifacts: str = "artifacts"
    #: model -> batch sizes for in-process inference (built-in and user models).
    batches: dict[str, list[int]] = field(default_factory=dict)
    runtimes: list[str] = field(default_factory=lambda: list(RUNTIMES))
    training_models: list[str] = field(default_factory=lambda: list(TRAINING_MODELS))
    rnn_batch: int = 64
    training: Training = field(default_factory=Training)
    timing: Timing = field(default_factory=Timing)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        data = dict(data)
        training = Training(**data.pop("training", {}))
        timing = Timing(**data.pop("timing", {}))
        return cls(training=training, timing=timing, **data)


def default_batches(model: str, quick: bool) -> list[int]:
    """The issue's batch sizes: 1, 8, 64, 256 (resnet 1, 8, 32); ``--quick`` keeps 1 and 64 (resnet 1)."""
    if model == "resnet":
        return [1] if quick else list(RESNET_BATCHES)
    return [1, 64] if quick else list(FULL_BATCHES)


def quick_plan(plan: Plan) -> Plan:
    """The ``--quick`` settings (within 5 minutes on a 2-core machine): fewer epochs, repeats and seconds."""
    plan.quick = True
    plan.training = Training(
        repeats=3,
        simplenn_epochs=5,
        dense784_epochs=3,
        digits_epochs=20,
        digits_target=0.97,
        digits_repeats=2,
        rnn_epochs=3,
        rnn_sequences=512,
    )
    plan.timing = Timing(warmup_calls=5, repeats=3, repeat_s=0.3, min_calls=3, max_calls=3000)
    return plan
