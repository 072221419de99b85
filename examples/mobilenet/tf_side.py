"""MobileNetV3-Small's TF side by nobuco, for the converter comparison only (the example itself uses onnx2tf).

``.venv-nobuco/bin/python -m examples.mobilenet.tf_side OUT_DIR``: rebuilds the seeded model
and writes ``mobilenet_savedmodel/`` taking ``x`` [N, 3, 224, 224] (NCHW kept).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from examples.common import nobuco_savedmodel
from examples.mobilenet.build import seeded


def main(out: Path) -> None:
    model = seeded()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    nobuco_savedmodel(model, {"x": (x, (None, 3, 224, 224))}, ["logits"], out / "mobilenet_savedmodel")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
