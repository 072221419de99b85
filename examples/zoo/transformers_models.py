"""Hugging Face ``transformers`` models from tiny configs, seeded, as torch.export programs.

``python -m examples.zoo.transformers_models ARCH FILE OUT_DIR`` (the main venv). Nothing is
downloaded: each config is written here (2 layers, hidden 32-64, vocabulary 1000) and the
weights are the library's seeded initialisation. ``return_dict=False`` no longer works in
transformers 5, so a wrapper returns the tensor that matters (``.logits`` or the encoder's
``last_hidden_state``). Batch and sequence axes stay dynamic (``torch.export.Dim``).

Text models take ``input_ids`` and ``attention_mask`` [N, T] int64 and are given
``position_ids`` (``arange(T)``) by the wrapper: GPT-2's default position path goes through
``aten::diff``, and a model that computes positions from the mask would freeze them in a trace.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from examples.common import quiet

VOCAB, MAX_TOKENS, IMAGE, SAMPLES = 1000, 32, 32, 1600


class TextLogits(nn.Module):
    """``input_ids``, ``attention_mask`` -> the model's ``.logits`` (``last``: the last position's only)."""

    def __init__(self, model: nn.Module, *, last: bool = False, positions: bool = True) -> None:
        super().__init__()
        self.model, self.last, self.positions = model, last, positions

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extra = {}
        if self.positions:
            extra["position_ids"] = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
        return logits[:, -1, :] if self.last else logits


class Encoder(nn.Module):
    """``input_ids``, ``attention_mask`` -> the encoder's ``last_hidden_state``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class ImageLogits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


class AudioEncoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values).last_hidden_state


def _eager(config: Any) -> Any:
    config._attn_implementation = "eager"  # the plain attention: no fused kernel for an exporter to meet
    return config


def bert_cls() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, initializer_range=0.2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    config.num_labels = 3
    return TextLogits(BertForSequenceClassification(_eager(config)))


def gpt2_lm() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False, bos_token_id=0,
                        eos_token_id=0)  # fmt: skip
    return TextLogits(GPT2LMHeadModel(_eager(config)), last=True)


def llama_lm() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         use_cache=False)  # fmt: skip
    return TextLogits(LlamaForCausalLM(_eager(config)), last=True)


def vit_cls() -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=IMAGE, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64, initializer_range=0.2,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    config.num_labels = 10
    return ImageLogits(ViTForImageClassification(_eager(config)))


def wav2vec2_enc() -> nn.Module:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        feat_proj_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0, do_stable_layer_norm=True,
        feat_extract_norm="layer",
    )  # fmt: skip
    return AudioEncoder(Wav2Vec2Model(_eager(config)))


def t5_enc() -> nn.Module:
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                      dropout_rate=0.0, relative_attention_num_buckets=8)  # fmt: skip
    return Encoder(T5EncoderModel(_eager(config)))


def _text(rows: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=(rows, steps)).astype(np.int64)
    lengths = rng.integers(1, steps + 1, size=rows)
    lengths[0] = steps
    mask = (np.arange(steps)[None, :] < lengths[:, None]).astype(np.int64)  # padding at the end
    return {"input_ids": ids * mask, "attention_mask": mask}


def _image(rows: int, seed: int) -> dict[str, np.ndarray]:
    return {"pixel_values": np.random.default_rng(seed).standard_normal((rows, 3, IMAGE, IMAGE)).astype(np.float32)}


def _audio(rows: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    wave = np.sin(np.linspace(0, 60, steps))[None, :] + 0.3 * np.random.default_rng(seed).standard_normal((rows, steps))
    return {"input_values": wave.astype(np.float32)}


#: name -> (the model, example inputs for the export, sample inputs for the parity gate, axis 1 bounds)
MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[int, int], dict[str, np.ndarray]], tuple[int, int]]] = {
    "bert_cls": (bert_cls, lambda rows, seed: _text(rows, 12 + seed, seed), (2, MAX_TOKENS)),
    "gpt2_lm": (gpt2_lm, lambda rows, seed: _text(rows, 12 + seed, seed), (2, MAX_TOKENS)),
    "llama_lm": (llama_lm, lambda rows, seed: _text(rows, 12 + seed, seed), (2, MAX_TOKENS)),
    "t5_enc": (t5_enc, lambda rows, seed: _text(rows, 12 + seed, seed), (2, MAX_TOKENS)),
    "vit_cls": (vit_cls, lambda rows, seed: _image(rows, seed), (0, 0)),
    "wav2vec2_enc": (wav2vec2_enc, lambda rows, seed: _audio(rows, 900 + 100 * seed, seed), (400, SAMPLES)),
}


def main(arch: str, file: str, out: Path) -> None:
    factory, inputs, (low, high) = MODELS[arch]
    torch.manual_seed(0)
    model = factory().eval()
    example = {k: torch.from_numpy(v) for k, v in inputs(3, 1).items()}
    batch = torch.export.Dim("batch", min=1, max=64)
    seq = torch.export.Dim("seq", min=low, max=high) if high else None
    shapes = tuple({0: batch, **({1: seq} if seq is not None else {})} for _ in example)
    with quiet(), torch.no_grad():  # positional: duoserve calls the program with its inputs in order
        program = torch.export.export(model, tuple(example.values()), dynamic_shapes=shapes)
    torch.export.save(program, str(out / file))
    np.savez(out / "sample.npz", **inputs(8, 4))  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
