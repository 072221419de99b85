"""Build the MobileNetV3-Small example: torchvision's model, ``weights=None``, seeded, as a torch.export program.

``python -m examples.mobilenet.build OUT_DIR`` (the main venv). NCHW input ``x``
[N, 3, 224, 224] float32, output ``logits`` [N, 1000].

torchvision's initialisation (classifier ~N(0, 0.01), fresh batch-norm statistics) gives
logits near 1e-2 that hardly depend on the input, which would make the parity check say
little. So the batch-norm statistics are calibrated on three seeded batches and the
classifier gets torch's default initialisation, scaled to logits of order 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from examples.common import quiet, torchvision


def seeded() -> torch.nn.Module:
    tv = torchvision()
    torch.manual_seed(0)
    model = tv.models.mobilenet_v3_small(weights=None)
    g = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.reset_parameters()
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration batches
            with torch.no_grad():
                module.weight.copy_(1 + 0.1 * torch.randn(module.num_features, generator=g))
                module.bias.copy_(0.1 * torch.randn(module.num_features, generator=g))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 224, 224, generator=g))
        model.classifier[-1].weight.mul_(10.0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.1
    return model.eval()


def main(out: Path) -> None:
    model = seeded()
    example = (torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2)),)
    batch = torch.export.Dim("batch", min=1, max=64)
    with quiet():
        program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    torch.export.save(program, str(out / "mobilenet.pt2"))
    rng = np.random.default_rng(3)
    np.savez(out / "sample.npz", x=rng.standard_normal((8, 3, 224, 224)).astype(np.float32))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
