"""A tiny BERT encoder with a classification head: transformers' BertModel from a config, seeded.

Inputs ``input_ids`` and ``attention_mask`` [N, T] int64 (T up to 32); outputs ``pooled``
[N, 32] and ``logits`` [N, 2]. Nothing is downloaded: the config is written here and the
weights are a seeded initialisation.

Three things are passed to BertModel explicitly, each what it would compute itself, so
that no tracer meets transformers' data-dependent code: the additive attention mask
[N, 1, 1, T] (transformers builds it from the 0/1 mask with shortcuts that depend on the
mask's values, e.g. none at all when it is all ones, which a tracer would bake in),
``token_type_ids`` (zeros) and ``position_ids`` (``arange(T)``; BertModel slices registered
buffers with the traced length, which nobuco would bake in as a constant). The request is
the same 0/1 mask. torch and transformers only (both venvs import it).
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB, HIDDEN, MAX_TOKENS = 1000, 32, 32


class TinyBert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(
            vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )  # fmt: skip
        config._attn_implementation = "eager"
        self.bert = BertModel(config, add_pooling_layer=True)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        blocked = 1.0 - attention_mask[:, None, None, :].to(torch.float32)
        out = self.bert(
            input_ids=input_ids,
            attention_mask=blocked * torch.finfo(torch.float32).min,
            token_type_ids=torch.zeros_like(input_ids),
            position_ids=positions,
        )
        return out.pooler_output, self.head(out.pooler_output)


def seeded() -> TinyBert:
    torch.manual_seed(0)
    return TinyBert().eval()
