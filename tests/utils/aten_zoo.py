"""Small, seeded models for the ATen lowering's whole-model tests: what users ship, built from configs (no download).

Each builder returns the eager module, example inputs for ``torch.export`` (more than one row:
export specializes an axis whose example size is 1), the contract, ``dynamic_shapes`` and the
cases to compare on (several batches, and two sequence lengths for sequence models).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from contract.manifest import ModelEntry
from tests.utils.aten import Case, entry

Dim = torch.export.Dim
SHAPES = ((1, 5), (3, 12), (8, 7))


@dataclass
class Zoo:
    module: torch.nn.Module
    example: tuple[torch.Tensor, ...]
    contract: ModelEntry
    shapes: Any
    cases: dict[str, Case]


def _ids_and_mask(vocab: int, rows: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    ids = g.integers(0, vocab, (rows, length), dtype=np.int64)
    kept = g.integers(max(1, length // 2), length + 1, (rows, 1))
    mask = (np.arange(length)[None, :] < kept).astype(np.int64)
    mask[0, :] = 1  # one row unpadded
    return ids, mask


def _text_cases(vocab: int) -> dict[str, Case]:
    cases = {}
    for rows, length in SHAPES:
        ids, mask = _ids_and_mask(vocab, rows, length, rows * 100 + length)
        cases[f"batch {rows} seq {length}"] = {"input_ids": ids, "attention_mask": mask}
    return cases


class Logits(torch.nn.Module):
    """A Hugging Face model's ``.logits`` (``return_dict=False`` no longer works in transformers 5)."""

    def __init__(self, model: torch.nn.Module, last: bool = False, positions: bool = False) -> None:
        super().__init__()
        self.model = model
        self.last = last
        self.positions = positions

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extra = {}
        if self.positions:  # GPT-2: positions from the mask (as generate() does), not aten.diff over it
            extra["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits
        return logits[:, -1] if self.last else logits


class ImageLogits(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


def _text(module: torch.nn.Module, vocab: int) -> Zoo:
    ids, mask = _ids_and_mask(vocab, 3, 10, 0)
    example = (torch.from_numpy(ids), torch.from_numpy(mask))
    contract = entry(
        [("input_ids", example[0]), ("attention_mask", example[1])],
        ["logits"],
        dynamic={"input_ids": [0], "attention_mask": [0]},
    )
    batch, seq = Dim("batch", min=1, max=64), Dim("seq", min=2, max=64)
    shapes = ({0: batch, 1: seq}, {0: batch, 1: seq})
    return Zoo(module.eval(), example, contract, shapes, _text_cases(vocab))


def bert() -> Zoo:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, num_labels=3, initializer_range=0.2,
    )  # fmt: skip
    return _text(Logits(BertForSequenceClassification(config).eval()), 100)


def gpt2() -> Zoo:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    # "eager" attention: torch.export of the default SDPA path fails in transformers 5.24 with a
    # dynamic batch and sequence ("Cannot view a tensor with shape [s23, s27, 32] and strides ...")
    config = GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64, attn_implementation="eager")
    return _text(Logits(GPT2LMHeadModel(config).eval(), last=True, positions=True), 100)


def vit() -> Zoo:
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, num_labels=5,
    )  # fmt: skip
    module = ImageLogits(ViTForImageClassification(config).eval())
    example = (torch.randn(3, 3, 32, 32),)
    contract = entry([("pixel_values", example[0])], ["logits"])
    cases = {
        f"batch {n}": {"pixel_values": np.random.default_rng(n).standard_normal((n, 3, 32, 32)).astype(np.float32)}
        for n in (1, 3, 8)
    }
    return Zoo(module.eval(), example, contract, ({0: Dim("batch", min=1, max=64)},), cases)


class Encoder(torch.nn.Module):
    """nn.TransformerEncoder over embeddings, with the padding mask a user passes (1 = a token)."""

    def __init__(self) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=mask == 0)


def encoder() -> Zoo:
    torch.manual_seed(0)
    module = Encoder().eval()
    g = np.random.default_rng(0)
    cases = {}
    for rows, length in SHAPES:
        _, mask = _ids_and_mask(10, rows, length, rows + length)
        x = g.standard_normal((rows, length, 32)).astype(np.float32)
        cases[f"batch {rows} seq {length}"] = {"x": x, "mask": mask}
    example = (torch.randn(3, 10, 32), torch.ones(3, 10, dtype=torch.int64))
    contract = entry([("x", example[0]), ("mask", example[1])], ["hidden"], dynamic={"x": [0], "mask": [0]})
    batch, seq = Dim("batch", min=1, max=64), Dim("seq", min=2, max=64)
    return Zoo(module, example, contract, ({0: batch, 1: seq}, {0: batch, 1: seq}), cases)


class Recurrent(torch.nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 16)
        self.rnn = getattr(torch.nn, kind)(16, 24, batch_first=True, num_layers=2)
        self.fc = torch.nn.Linear(24, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(ids))
        return self.fc(out[:, -1])


def recurrent(kind: str) -> Zoo:
    """A GRU/LSTM classifier: the batch is dynamic, the sequence is not (torch.export unrolls the
    recurrence over time and refuses a dynamic sequence: "Constraints violated (seq)")."""
    torch.manual_seed(0)
    module = Recurrent(kind).eval()
    example = (torch.randint(0, 50, (3, 10)),)
    contract = entry([("ids", example[0])], ["logits"])
    cases = {f"batch {n}": {"ids": np.random.default_rng(n).integers(0, 50, (n, 10))} for n in (1, 3, 8)}
    return Zoo(module, example, contract, ({0: Dim("batch", min=1, max=64)},), cases)


class ConvNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


def convnet() -> Zoo:
    torch.manual_seed(0)
    module = ConvNet().eval()
    for bn in (module.features[1], module.features[5]):  # running statistics other than 0 and 1
        assert isinstance(bn, torch.nn.BatchNorm2d)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    example = (torch.randn(3, 3, 16, 16),)
    contract = entry([("x", example[0])], ["logits"])
    cases = {
        f"batch {n}": {"x": np.random.default_rng(n).standard_normal((n, 3, 16, 16)).astype(np.float32)}
        for n in (1, 3, 8)
    }
    return Zoo(module, example, contract, ({0: Dim("batch", min=1, max=64)},), cases)


MODELS: dict[str, Callable[[], Zoo]] = {
    "transformer_encoder": encoder,
    "bert": bert,
    "gpt2": gpt2,
    "vit": vit,
    "gru": lambda: recurrent("GRU"),
    "lstm": lambda: recurrent("LSTM"),
    "convnet": convnet,
}


class Hidden(torch.nn.Module):
    """An encoder's ``last_hidden_state``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def t5_encoder() -> Zoo:
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    config = T5Config(
        vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
        relative_attention_max_distance=16, dropout_rate=0.0,
    )  # fmt: skip
    zoo = _text(Hidden(T5EncoderModel(config).eval()), 100)
    return zoo


def bart_encoder() -> Zoo:
    from transformers import BartConfig, BartModel

    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=100, d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
    )  # fmt: skip
    return _text(Hidden(BartModel(config).get_encoder().eval()), 100)


class Audio(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values).logits


def wav2vec2() -> Zoo:
    from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, num_labels=3, classifier_proj_size=16, do_stable_layer_norm=False,
        feat_extract_norm="group", initializer_range=0.2,
    )  # fmt: skip
    module = Audio(Wav2Vec2ForSequenceClassification(config).eval())
    example = (torch.randn(3, 400),)
    contract = entry([("input_values", example[0])], ["logits"], dynamic={"input_values": [0]}, most=4000)
    cases = {
        f"batch {rows} samples {length}": {
            "input_values": np.random.default_rng(rows + length).standard_normal((rows, length)).astype(np.float32)
        }
        for rows, length in ((1, 320), (3, 487), (8, 400))
    }
    # Dim.DYNAMIC: a named Dim is refused ("Constraints violated (samples)": torch guards on the
    # feature encoder's strided lengths); DYNAMIC keeps the axis symbolic
    samples = Dim.DYNAMIC
    return Zoo(module.eval(), example, contract, ({0: Dim("batch", min=1, max=64), 1: samples},), cases)


MODELS.update({"t5_encoder": t5_encoder, "bart_encoder": bart_encoder, "wav2vec2": wav2vec2})


def gpt2_default_positions() -> Zoo:
    """GPT-2 called as most users call it: ids and mask, positions left to the model."""
    zoo = gpt2()
    assert isinstance(zoo.module, Logits)
    zoo.module.positions = False
    return zoo


class PlainEncoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def encoder_without_mask() -> Zoo:
    torch.manual_seed(0)
    zoo = encoder()
    contract = entry([("x", zoo.example[0])], ["hidden"], dynamic={"x": [0]})
    cases = {case: {"x": tensors["x"]} for case, tensors in zoo.cases.items()}
    batch, seq = Dim("batch", min=1, max=64), Dim("seq", min=2, max=64)
    return Zoo(PlainEncoder().eval(), zoo.example[:1], contract, ({0: batch, 1: seq},), cases)


MODELS.update({"gpt2_default_positions": gpt2_default_positions, "transformer_encoder_no_mask": encoder_without_mask})
