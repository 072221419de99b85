"""The four examples: converted once per recipe, each refusal on the way recorded, every artifact within 1e-4.

(Serving them through both stacks and the gateway is in ``test_served.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contract.manifest import read_manifest
from examples.runner import EXAMPLES, up_to_date

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def state(examples_root: Path) -> dict[str, Any]:
    return dict(json.loads((examples_root / "examples.json").read_text()))


def test_every_example_is_added_and_up_to_date(examples_root: Path, state: dict[str, Any]) -> None:
    manifest = read_manifest(examples_root)
    assert set(manifest.models) == set(EXAMPLES)
    for example in EXAMPLES.values():
        assert up_to_date(example, examples_root), example.name
        assert state[example.name]["add_s"] > 0


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_artifact_passed_the_gate_at_1_7_and_max_batch_and_on_the_sample(examples_root: Path, name: str) -> None:
    entry = read_manifest(examples_root).models[name]
    assert entry.origin == "user"
    assert {"onnx", "tf", "mar", "mar_ort"} <= set(entry.artifacts)
    assert entry.parity, name
    for kind, record in entry.parity.items():
        sizes = sorted({1, min(7, entry.max_batch), entry.max_batch})
        shorter = [min(3, entry.max_batch)] if any(t.dynamic for t in entry.inputs) else []
        assert record.batches == (*sizes, *shorter), (kind, record)
        assert record.samples > 0, kind
        assert set(record.outputs) == set(entry.output_names)
        for output, figures in record.outputs.items():
            assert figures.max_abs <= 1e-4, (name, kind, output, figures)
    # the source and every made artifact timed in process, at batch 1 and the max batch
    assert set(entry.latency) == {"source", *entry.parity}, entry.latency
    for kind, timing in entry.latency.items():
        assert timing.max_batch == entry.max_batch, (kind, timing)
        assert timing.repeats >= 5, (kind, timing)
        assert min(timing.batch_1_ms, timing.max_batch_ms) > 0, (kind, timing)
        ratio = entry.slowdown(kind)
        assert ratio is not None
        assert ratio > 0


def test_dynrnn_shows_what_export_does_to_pack_padded_sequence(state: dict[str, Any]) -> None:
    build = state["dynrnn"]["build"]
    exporters = build["exporters_on_packed_model"]
    assert exporters["torch.export.export"].startswith("TypeError"), exporters
    assert exporters["torch.onnx.export(dynamo=True)"] != "ok"
    assert exporters["torch.onnx.export(dynamo=False)"] != "ok"
    assert build["packed_vs_masked_max_abs"] <= 1e-6  # the served masked model answers as the packed one


def test_dynrnn_onnx2tf_is_refused_by_the_gate_and_the_pair_is_served(state: dict[str, Any]) -> None:
    (attempt,) = state["dynrnn"]["refused"]
    assert "made by onnx2tf" in attempt["refusal"]
    assert "--pair TORCH_FILE TF_MODEL" in attempt["refusal"]
    assert "--pair" in state["dynrnn"]["command"]


def test_textcls_exact_gelu_gets_its_onnx_from_the_keras_on_torch_module(examples_root: Path) -> None:
    # tf2onnx writes an Erfc op for Keras' exact gelu, which no ONNX opset has; torch.onnx writes Erf (the
    # TorchScript exporter cannot export the trace's gelu shape arithmetic: the dynamo exporter on the program can)
    entry = read_manifest(examples_root).models["textcls"]
    assert entry.made_by["onnx"] == "Keras 3 (torch backend) + torch.export + torch.onnx (dynamo)"
    assert entry.made_by["torchscript" if "torchscript" in entry.artifacts else "torch_export"].startswith("Keras 3")
    assert entry.missing == {}
    assert entry.parity["onnx"].max_abs <= 1e-4


def test_tinybert_gets_its_tf_side_from_the_aten_lowering(examples_root: Path, state: dict[str, Any]) -> None:
    # onnx2tf cannot convert it (a Reshape with two dynamic axes); the lowering of its torch.export program can
    entry = read_manifest(examples_root).models["tinybert"]
    assert entry.made_by["tf"] == "torch.export + duoserve's ATen lowering"
    assert entry.parity["tf"].max_abs <= 1e-4
    assert "--pair" not in state["tinybert"]["command"]
