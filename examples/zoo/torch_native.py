"""torch-native modules (no library model code): ``nn.TransformerEncoder``, an LSTM, a conv net.

``python -m examples.zoo.torch_native ARCH FILE OUT_DIR`` (the main venv). Each is seeded and
written, by FILE's suffix, as a TorchScript ``.pt`` (``torch.jit.trace``) or a torch.export ``.pt2`` with
dynamic batch (and sequence) axes.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from examples.common import quiet

FEATURES, MAX_STEPS, SIDE = 16, 40, 32


class TransformerEncoder(nn.Module):
    """``x`` [N, T, 16] float32 -> ``y`` [N, T, 16]: two post-norm layers, 2 heads, GELU."""

    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(FEATURES, 2, dim_feedforward=32, dropout=0.0, activation="gelu",
                                           batch_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class Lstm(nn.Module):
    """``x`` [N, T, 16] float32 -> ``logits`` [N, 4]: a two-layer LSTM, its last step through a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, 32, num_layers=2, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class ConvNet(nn.Module):
    """``image`` [N, 3, 32, 32] float32 (NCHW) -> ``logits`` [N, 10]: conv-BN-ReLU blocks, pooling, a head."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, 16), block(16, 32), block(32, 32))
        self.head = nn.Linear(32, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).mean(dim=(2, 3)))


def _sequence(rows: int, steps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, steps, FEATURES)).astype(np.float32)


def _image(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 3, SIDE, SIDE)).astype(np.float32)


def _calibrated(model: ConvNet) -> ConvNet:
    """Batch-norm statistics from seeded batches, so the logits depend on the image."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(torch.from_numpy(_image(16, 100 + seed)))
    return model


def main(arch: str, file: str, out: Path) -> None:
    torch.manual_seed(0)
    batch = torch.export.Dim("batch", min=1, max=64)
    steps = torch.export.Dim("steps", min=2, max=MAX_STEPS)
    if arch == "transformer_encoder":
        model: nn.Module = TransformerEncoder()
        example, shapes, sample = _sequence(3, 12, 1), {0: batch, 1: steps}, {"x": _sequence(8, 23, 4)}
    elif arch == "lstm":
        model = Lstm()
        example, shapes, sample = _sequence(3, 12, 1), {0: batch, 1: steps}, {"x": _sequence(8, 23, 4)}
    else:
        model = _calibrated(ConvNet())
        example, shapes, sample = _image(3, 1), {0: batch}, {"image": _image(8, 4)}
    model.eval()
    args = (torch.from_numpy(example),)
    with quiet(), torch.no_grad():
        if file.endswith(".pt2"):
            program = torch.export.export(model, args, dynamic_shapes=(shapes,))
            torch.export.save(program, str(out / file))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit.trace's deprecation notice
                traced = torch.jit.trace(model, args)
            traced.save(str(out / file))
    np.savez(out / "sample.npz", **sample)  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
