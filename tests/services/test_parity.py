"""Every runtime computes the same function: TorchScript, ONNX Runtime and the TF SavedModel
against the eager PyTorch model, for every model, within 1e-4 (max absolute difference)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
import torch

from contract.manifest import read_manifest
from services.datasets import digits_split
from services.tf_api import models as keras_models
from services.torch_api.train import load_model
from stack.builtins import BUILTIN_NAMES, BUILTINS
from tests.utils.inputs import random_batch

TOLERANCE = 1e-4
BATCH_SIZES = (1, 7, 32)


def verify(root: Path, name: str, kind: str) -> Path:
    return read_manifest(root).verify(root, name, kind)


@functools.cache
def _eager(root: Path, name: str) -> torch.nn.Module:
    return load_model(name, verify(root, name, "weights"))


def _runners(root: Path, name: str) -> dict[str, object]:
    (spec,), (output,) = BUILTINS[name].inputs, BUILTINS[name].outputs
    script = torch.jit.load(str(verify(root, name, "torchscript"))).eval()
    session = ort.InferenceSession(str(verify(root, name, "onnx")), providers=["CPUExecutionProvider"])
    saved = tf.saved_model.load(str(verify(root, name, "tf"))).signatures["serving_default"]

    def torchscript(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return script(torch.from_numpy(x)).numpy()

    def onnxruntime(x: np.ndarray) -> np.ndarray:
        return session.run([output.name], {spec.name: x})[0]

    def savedmodel(x: np.ndarray) -> np.ndarray:
        return saved(**{spec.name: tf.constant(x)})[output.name].numpy()

    return {"torchscript": torchscript, "onnxruntime": onnxruntime, "savedmodel": savedmodel}


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_every_runtime_matches_eager_pytorch(artifacts_root: Path, name: str) -> None:
    (output,) = BUILTINS[name].outputs
    eager = _eager(artifacts_root, name)
    runners = _runners(artifacts_root, name)
    for n in BATCH_SIZES:
        x = random_batch(name, n, seed=100 + n)
        with torch.no_grad():
            expected = eager(torch.from_numpy(x)).numpy()
        assert expected.shape == (n, *output.shape)
        for runtime, run in runners.items():
            actual = run(x)  # type: ignore[operator]
            assert actual.shape == expected.shape, (runtime, n)
            diff = float(np.abs(actual - expected).max())
            assert diff <= TOLERANCE, f"{name} {runtime} batch {n}: max abs diff {diff:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_keras_logits_match_pytorch_logits(artifacts_root: Path, name: str) -> None:
    """Probabilities can hide a layout bug behind a saturated softmax; logits cannot."""
    eager = _eager(artifacts_root, name)
    keras_model = keras_models.build(BUILTINS[name], verify(artifacts_root, name, "weights"), logits=True)
    x = random_batch(name, 7, seed=7)
    with torch.no_grad():
        expected = eager.logits(torch.from_numpy(x)).numpy()  # type: ignore[operator]
    actual = keras_model(x, training=False).numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    assert float(np.abs(actual - expected).max()) <= TOLERANCE * scale
    assert float(np.std(expected)) > 0.1, "logits nearly constant: the parity check would be vacuous"


@pytest.mark.slow
def test_digits_parity_on_real_images(artifacts_root: Path) -> None:
    _, _, x_test, _ = digits_split()
    eager = _eager(artifacts_root, "digits")
    with torch.no_grad():
        expected = eager(torch.from_numpy(x_test)).numpy()
    for runtime, run in _runners(artifacts_root, "digits").items():
        actual = run(x_test)  # type: ignore[operator]
        diff = float(np.abs(actual - expected).max())
        assert diff <= TOLERANCE, f"digits {runtime} on real images: {diff:.2e}"
        assert (actual.argmax(1) == expected.argmax(1)).all(), runtime


@pytest.mark.slow
def test_resnet_outputs_are_not_degenerate(artifacts_root: Path) -> None:
    """Seeded weights must still give peaked, input-dependent distributions."""
    eager = _eager(artifacts_root, "resnet")
    x = random_batch("resnet", 4, seed=3)
    with torch.no_grad():
        probs = eager(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert probs.max() > 0.01  # well above uniform (1e-3)
    assert float(np.abs(probs[0] - probs[1]).max()) > 1e-4
