"""The model zoo (issue 19): real architectures from the field's libraries, built here, seeded, nothing downloaded.

Each entry is an :class:`examples.runner.Example` with a family: its builder
(``python -m examples.zoo.<module> ARCH FILE OUT_DIR``, the main venv) writes the source
file and a ``sample.npz`` into ``examples/zoo/out/<name>/``, and ``add`` is what ``duoserve
models add`` is given. ``python -m examples zoo`` adds, serves and tabulates them
(:mod:`examples.zoo.run`).
"""

from __future__ import annotations

from examples.runner import Example

KERAS, HF, TORCH, TF = "Keras application", "HF transformers", "torch-native", "tf.Module"
SAMPLE = ("--sample", "sample.npz")
TEXT = ("--input", "input_ids:-1,-1:int64:0:999", "--input", "attention_mask:-1,-1:int64:0:1", "--max-length", "32")
SEQUENCE = ("--input", "x:-1,-1,16:float32", "--max-length", "40")


def _keras(name: str, function: str, side: int) -> Example:
    return Example(
        name,
        f"keras.applications.{function} (weights=None, seeded), image [N,{side},{side},3] float32 -> 10 classes",
        "examples.zoo.keras_apps",
        (f"{name}.keras", "--max-batch", "8", *SAMPLE),
        family=KERAS,
        home="zoo",
        build_args=(name, f"{name}.keras"),
    )


def _hf(name: str, summary: str, *args: str) -> Example:
    return Example(
        name,
        summary,
        "examples.zoo.transformers_models",
        (f"{name}.pt2", *args, "--max-batch", "8", *SAMPLE),
        family=HF,
        home="zoo",
        build_args=(name, f"{name}.pt2"),
    )


def _torch(name: str, arch: str, file: str, summary: str, *args: str) -> Example:
    return Example(
        name,
        summary,
        "examples.zoo.torch_native",
        (file, *args, "--max-batch", "8", *SAMPLE),
        family=TORCH,
        home="zoo",
        build_args=(arch, file),
    )


ZOO: dict[str, Example] = {
    e.name: e
    for e in (
        _keras("efficientnetb0", "EfficientNetB0", 32),
        _keras("convnext_tiny", "ConvNeXtTiny", 32),
        _keras("resnet50v2", "ResNet50V2", 32),
        _keras("xception", "Xception", 71),
        _keras("mobilenetv3s", "MobileNetV3Small", 32),
        _keras("nasnetmobile", "NASNetMobile", 32),
        _hf(
            "bert_cls",
            "BertForSequenceClassification (2 layers, hidden 32), input_ids + attention_mask -> 3 logits",
            *TEXT,
        ),
        _hf("gpt2_lm", "GPT2LMHeadModel (2 layers, hidden 32), the last position's next-token logits [N, 1000]", *TEXT),
        _hf("llama_lm", "LlamaForCausalLM (2 layers, hidden 32, GQA), the last position's next-token logits", *TEXT),
        _hf("t5_enc", "T5EncoderModel (2 layers, d_model 32), last_hidden_state [N, T, 32]", *TEXT),
        _hf("vit_cls", "ViTForImageClassification (2 layers, hidden 32), pixel_values [N,3,32,32] -> 10 logits"),
        _hf(
            "wav2vec2_enc",
            "Wav2Vec2Model (3 conv + 2 transformer layers), input_values [N, T<=1600] -> hidden",
            "--input",
            "input_values:-1,-1:float32",
            "--max-length",
            "1600",
        ),
        _torch(
            "transformer_encoder",
            "transformer_encoder",
            "transformer_encoder.pt2",
            "nn.TransformerEncoder (2 layers, d 16, GELU), x [N,T,16] -> [N,T,16], torch.export",
            *SEQUENCE,
        ),
        _torch(
            "lstm_ts",
            "lstm",
            "lstm_ts.pt",
            "nn.LSTM (2 layers, 32) + linear head, x [N,T,16] -> 4 logits, TorchScript",
            *SEQUENCE,
        ),
        _torch(
            "convnet_ts",
            "convnet",
            "convnet_ts.pt",
            "conv-BN-ReLU-pool x3 + linear, image [N,3,32,32] -> 10 logits, TorchScript",
            "--input",
            "image:-1,3,32,32:float32",
        ),
        _torch(
            "convnet_ep",
            "convnet",
            "convnet_ep.pt2",
            "the same conv net as a torch.export program, image [N,3,32,32] -> 10 logits",
        ),
        Example(
            "tf_pooler",
            "a tf.Module (no Keras): dense, softmax attention over time, layer norm, tanh head; "
            "x [N,T,8] -> scores [N,3], SavedModel",
            "examples.zoo.tf_module",
            ("tf_pooler_savedmodel", "--max-length", "40", "--max-batch", "8", *SAMPLE),
            family=TF,
            home="zoo",
            build_args=("pooler", "tf_pooler_savedmodel"),
        ),
    )
}
#: One small model per family: what ``tests/models/test_zoo.py`` runs end to end.
CI = ("mobilenetv3s", "vit_cls", "convnet_ts", "tf_pooler")
