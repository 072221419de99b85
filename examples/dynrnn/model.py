"""The article's DynamicRNN: a GRU over variable-length sequences, given their lengths.

``PackedGRU`` is how PyTorch code usually writes it (``pack_padded_sequence``). No exporter
takes it (see ``build.py``). ``MaskedGRU`` has the same weights and the same answers: a
unidirectional GRU's step ``t`` depends only on steps ``<= t``, so running it over the padded
batch and reading the hidden state at step ``lengths - 1`` gives what the packed run gives.
It picks that step with a one-hot time mask (not ``torch.gather``, which nobuco converts only
for static shapes). torch only: this file is imported by the main venv and by nobuco's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

FEATURES, HIDDEN, CLASSES, MAX_STEPS = 10, 32, 2, 50


class PackedGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(FEATURES, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.fc(h[-1])


class MaskedGRU(PackedGRU):
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)  # [N, T, H]
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # [1, T]
        last = (steps == (lengths - 1).unsqueeze(1)).to(out.dtype)  # [N, T], one-hot at lengths - 1
        return self.fc((out * last.unsqueeze(2)).sum(dim=1))


def seeded() -> tuple[PackedGRU, MaskedGRU]:
    """Both models with the same seeded weights."""
    torch.manual_seed(0)
    packed = PackedGRU().eval()
    masked = MaskedGRU().eval()
    masked.load_state_dict(packed.state_dict())
    return packed, masked
