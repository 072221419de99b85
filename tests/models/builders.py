"""Models a user might bring, made here (none of the examples): ``python -m tests.models.builders KIND OUT``.

Each runs in its own process, so torch and TensorFlow never share one:

- ``onnx_cnn``: a small CNN (conv, batch norm, pooling, a mean over space, two heads'
  worth of linear layers) exported by torch.onnx's default (dynamo) exporter: ``cnn.onnx``;
- ``keras_savedmodel``: a Keras model with a float and an int64 (embedding) input, exported as
  a SavedModel with ``model.export``: ``ksaved/``;
- ``torchscript_x``: a TorchScript MLP taking ``x`` [N, 6]: ``mlp_x.pt``;
- ``keras_savedmodel_x``: a Keras MLP taking ``x`` [N, 6], other weights: ``other_x/``;
- ``bad_onnx``: hand-made ONNX graphs: ``hardmax.onnx`` (an op onnx2torch has no converter
  for), ``nan.onnx`` (``log(x - 2)``, NaN on every input in [0, 1]), ``strings.onnx`` (a
  string input).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def onnx_cnn(out: Path) -> None:
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8, 16)
            self.out = torch.nn.Linear(16, 5)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            h = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(image))), 2)
            return torch.softmax(self.out(torch.tanh(self.fc(h.mean(dim=(2, 3))))), dim=-1)

    torch.manual_seed(11)
    model = Net().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(
        model, (torch.rand(2, 3, 16, 16),), str(out / "cnn.onnx"), input_names=["image"], output_names=["probs"],
        dynamic_shapes=({0: batch},), dynamo=True, external_data=False,
    )  # fmt: skip


def torchscript_x(out: Path) -> None:
    import torch

    torch.manual_seed(12)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()

    class Named(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

    torch.jit.script(Named()).save(str(out / "mlp_x.pt"))


def keras_savedmodel(out: Path) -> None:
    import keras

    keras.utils.set_random_seed(13)
    num = keras.Input((10,), name="num")
    cat = keras.Input((6,), name="cat", dtype="int64")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(20, 4)(cat))
    h = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([num, embedded]))
    model = keras.Model([num, cat], keras.layers.Dense(3, activation="softmax")(h))
    model.export(str(out / "ksaved"), verbose=False)


def keras_savedmodel_x(out: Path) -> None:
    import keras

    keras.utils.set_random_seed(14)
    x = keras.Input((6,), name="x")
    model = keras.Model(x, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(x)))
    model.export(str(out / "other_x"), verbose=False)


def bad_onnx(out: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    def save(name: str, nodes: list, inputs: list, outputs: list, inits: list | None = None) -> None:
        graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits or [])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(out / f"{name}.onnx"))

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    save("hardmax", [helper.make_node("Hardmax", ["x"], ["y"])], [x], [y])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], np.array([2.0], np.float32))
    save("nan", [helper.make_node("Sub", ["x", "two"], ["d"]), helper.make_node("Log", ["d"], ["y"])], [x], [y], [two])
    s = helper.make_tensor_value_info("s", TensorProto.STRING, ["batch", 2])
    t = helper.make_tensor_value_info("t", TensorProto.STRING, ["batch", 2])
    save("strings", [helper.make_node("Identity", ["s"], ["t"])], [s], [t])


KINDS = {f.__name__: f for f in (onnx_cnn, torchscript_x, keras_savedmodel, keras_savedmodel_x, bad_onnx)}

if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    kind, where = sys.argv[1], Path(sys.argv[2])
    where.mkdir(parents=True, exist_ok=True)
    KINDS[kind](where)
