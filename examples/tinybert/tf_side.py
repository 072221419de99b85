"""The tiny BERT's TF side, by nobuco (PyTorch -> Keras 2), in the nobuco venv.

``.venv-nobuco/bin/python -m examples.tinybert.tf_side OUT_DIR``: reads ``weights.pt``,
writes ``tinybert_savedmodel/`` taking ``input_ids`` and ``attention_mask`` [N, T] int64 and
returning ``pooled`` and ``logits``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from examples.common import nobuco_savedmodel
from examples.tinybert.model import TinyBert


def main(out: Path) -> None:
    model = TinyBert().eval()
    model.load_state_dict(torch.load(out / "weights.pt"))
    ids = torch.randint(0, 1000, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = (torch.arange(12)[None, :] < torch.tensor([[12], [5], [9]])).to(torch.int64)  # padded rows
    nobuco_savedmodel(
        model,
        {"input_ids": (ids, (None, None)), "attention_mask": (mask, (None, None))},
        ["pooled", "logits"],
        out / "tinybert_savedmodel",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
