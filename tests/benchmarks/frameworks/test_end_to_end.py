"""A tiny run of all three workers: every runtime agrees with the reference on the inputs it was timed on,
the JSON has the promised schema, and the report is written."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from benchmarks.frameworks.parity import TOLERANCE
from benchmarks.frameworks.plan import RUNTIMES, TRAINING_MODELS
from tests.benchmarks.frameworks.conftest import THREADS

pytestmark = pytest.mark.slow

TRAINING_KEYS = {"framework", "model", "samples_per_s", "epoch_s", "first_epoch_s", "losses", "batch", "repeats"}
INFERENCE_KEYS = {"runtime", "model", "batch", "p50_ms", "p99_ms", "samples_per_s", "max_abs_diff", "parity"}


def test_every_runtime_matches_the_reference_within_tolerance(tiny_run: dict[str, Any]) -> None:
    result = tiny_run["result"]
    assert result["mismatches"] == []
    for entry in result["inference"]:
        assert entry["reference"] == "torch_eager", entry
        assert entry["parity"] == "ok", entry
        assert entry["max_abs_diff"] is not None, entry
        assert entry["max_abs_diff"] <= TOLERANCE, entry
    # every runtime ran on the built-in models; torch.compile may only be missing with a stated reason
    ran = {(e["runtime"], e["model"], e["batch"]) for e in result["inference"]}
    compile_skips = [s for s in result["skipped"] if s["what"] == "torch_compile"]
    for runtime in RUNTIMES:
        if runtime == "torch_compile" and compile_skips:
            assert all("torch.compile is unavailable" in s["reason"] for s in compile_skips)
            continue
        for model, batch in (("mlp", 1), ("mlp", 8), ("digits", 8)):
            assert (runtime, model, batch) in ran, (runtime, model, batch, result["skipped"])
    rnn = {e["runtime"] for e in result["inference"] if e["model"] == "dynamic_rnn"}
    assert {"torch_eager", "tf_eager", "tf_function"} <= rnn


def test_frameworks_json_schema(tiny_run: dict[str, Any]) -> None:
    result = tiny_run["result"]
    assert {"training", "inference", "environment", "claims", "skipped", "mismatches"} <= set(result)
    for entry in result["training"]:
        assert set(entry) >= TRAINING_KEYS, entry.keys()
        assert entry["framework"] in ("pytorch", "tensorflow")
        assert entry["samples_per_s"] > 0
        assert entry["epoch_s"] > 0
        assert len(entry["losses"]) == len(entry["epoch_s_per_repeat"][0])
    for entry in result["inference"]:
        assert set(entry) >= INFERENCE_KEYS, entry.keys()
        assert 0 < entry["p50_ms"] <= entry["p99_ms"]
        assert entry["calls"] == 4  # 2 windows of exactly 2 calls (min = max = 2)
    env = result["environment"]
    assert env["threads"] == THREADS
    assert env["device"] == "cpu"
    frameworks = env["frameworks"]
    assert frameworks["pytorch"]["torch_threads"] == THREADS
    assert frameworks["pytorch"]["torch_interop_threads"] == THREADS
    assert frameworks["tensorflow"]["tf_intra_op_threads"] == THREADS
    assert frameworks["tensorflow"]["tf_inter_op_threads"] == THREADS
    assert frameworks["onnxruntime"]["ort_threads"] == THREADS
    assert [c["claim"].split(":")[0] for c in result["claims"]] == [
        "Training speed",
        "Inference speed",
        "TensorFlow offers more out-of-the-box optimizations for deployment",
        "GPU utilization",
    ]
    assert result["claims"][3]["verdict"] == "not measured (no GPU in this run)"


def test_both_frameworks_train_every_program_from_the_same_start(tiny_run: dict[str, Any]) -> None:
    """Same weights, same batches, same optimizer: the first epoch's losses agree closely."""
    result = tiny_run["result"]
    trained = {(t["framework"], t["model"]) for t in result["training"]}
    for model in TRAINING_MODELS:
        assert ("pytorch", model) in trained, model
        assert ("tensorflow", model) in trained, model
    losses = {(t["framework"], t["model"]): t["losses"] for t in result["training"]}
    for model in TRAINING_MODELS:
        first = abs(losses[("pytorch", model)][0] - losses[("tensorflow", model)][0])
        assert first < 1e-3, (model, first)
    for model, diff in result["loss_agreement"].items():
        assert diff < 1e-2, (model, diff)  # later epochs drift apart by float rounding only
    digits = [t for t in result["training"] if t["model"] == "digits_cnn"]
    for entry in digits:
        assert entry["target_accuracy"] == 0.5
        assert len(entry["accuracy"]) >= 1


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.ids.append(self._table)
            self.rows[self._table] = 0
        elif tag == "tr" and self._table is not None:
            self.rows[self._table] += 1


def test_report_is_written(tiny_run: dict[str, Any]) -> None:
    out = tiny_run["out"]
    markdown = (out / "report.md").read_text()
    assert "The article's claims on this machine" in markdown
    assert "| torchscript | 8 |" in markdown
    parser = _Tables()
    parser.feed((out / "report.html").read_text())
    assert parser.ids[:2] == ["claims", "training"]
    assert parser.rows["claims"] == 1 + 4
    assert {"inference-mlp", "inference-digits", "inference-dynamic_rnn"} <= set(parser.ids)
    for plot in ("training.png", "losses.png", "inference_mlp.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
