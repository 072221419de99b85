"""Build the tiny-BERT example as a torch.export program with dynamic batch and sequence axes.

``python -m examples.tinybert.build OUT_DIR`` (the main venv).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from examples.common import quiet
from examples.tinybert.model import MAX_TOKENS, VOCAB, seeded


def inputs(rows: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(rows, steps)).astype(np.int64)
    lengths = rng.integers(1, steps + 1, size=rows)
    mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.int64)  # padding at the end
    return {"input_ids": ids * mask, "attention_mask": mask}


def main(out: Path) -> None:
    model = seeded()
    torch.save(model.state_dict(), out / "weights.pt")
    example = tuple(torch.from_numpy(v) for v in inputs(3, 12, seed=1).values())
    batch, seq = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("seq", min=2, max=MAX_TOKENS)
    with quiet():
        program = torch.export.export(model, example, dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
    torch.export.save(program, str(out / "tinybert.pt2"))
    np.savez(out / "sample.npz", **inputs(16, 19, seed=4))  # type: ignore[arg-type]


if __name__ == "__main__":
    main(Path(sys.argv[1]))
