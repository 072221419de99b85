"""The DynamicRNN's TF side, by nobuco (PyTorch -> Keras 2), in the nobuco venv.

``.venv-nobuco/bin/python -m examples.dynrnn.tf_side OUT_DIR``: reads ``weights.pt``, writes
``dynrnn_savedmodel/`` with one signature taking ``x`` [N, T, 10] float32 and ``lengths`` [N]
int64 (NCW kept: ``ChannelOrder.PYTORCH``) and returning ``logits``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from examples.common import nobuco_savedmodel
from examples.dynrnn.model import FEATURES, MaskedGRU


def main(out: Path) -> None:
    model = MaskedGRU().eval()
    model.load_state_dict(torch.load(out / "weights.pt"))
    x = torch.randn(4, 20, FEATURES, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([20, 3, 11, 7])
    nobuco_savedmodel(
        model,
        {"x": (x, (None, None, FEATURES)), "lengths": (lengths, (None,))},
        ["logits"],
        out / "dynrnn_savedmodel",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
