"""The PyTorch definitions: shapes, the digits accuracy, and deterministic training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from contract.manifest import Manifest
from services.datasets import digits_split
from services.torch_api.models import build
from services.torch_api.train import accuracy, load_model, train_digits
from stack.builtins import BUILTIN_NAMES, BUILTINS
from tests.utils.inputs import random_batch


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_output_shape_and_range(name: str) -> None:
    (output,) = BUILTINS[name].outputs
    model = build(name).eval()
    with torch.no_grad():
        out = model(torch.from_numpy(random_batch(name, 3))).numpy()
    assert out.shape == (3, *output.shape)
    assert ((out >= 0) & (out <= 1)).all()
    if name != "mlp":
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_mlp_is_the_seed_article_network() -> None:
    model = build("mlp")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {"fc1.weight": (5, 10), "fc1.bias": (5,), "fc2.weight": (1, 5), "fc2.bias": (1,)}


def test_resnet_has_resnet18_shape() -> None:
    model = build("resnet")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 20  # 1 stem + 16 in blocks + 3 projections
    assert len(bns) == 20
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's resnet18


@pytest.mark.slow
def test_digits_heldout_accuracy(artifacts_root: Path, manifest: Manifest) -> None:
    _, _, x_test, y_test = digits_split()
    model = load_model("digits", manifest.verify(artifacts_root, "digits", "weights"))
    acc = accuracy(model, x_test, y_test)
    assert acc >= 0.97
    assert manifest.model("digits").metrics["heldout_accuracy"] == pytest.approx(acc)


def test_split_is_disjoint_and_stratified() -> None:
    x_train, _, x_test, y_test = digits_split()
    assert len(x_train) + len(x_test) == 1797
    assert x_train.shape[1:] == (8, 8)
    assert x_train.dtype == np.float32
    train_rows = {row.tobytes() for row in x_train}
    assert sum(row.tobytes() in train_rows for row in x_test) <= 1  # the dataset has one duplicate image
    assert set(np.bincount(y_test)) <= {35, 36, 37}


@pytest.mark.slow
def test_training_is_deterministic() -> None:
    def weights() -> dict[str, np.ndarray]:
        torch.manual_seed(1)
        model, _ = train_digits(epochs=2)
        return {k: v.numpy().copy() for k, v in model.state_dict().items()}

    first, second = weights(), weights()
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
