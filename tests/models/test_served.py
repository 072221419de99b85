"""Brought models served by every backend through the gateway, each within 1e-4 of the source model's own runtime.

The user models (an ONNX file exported by torch's default exporter, a Keras SavedModel with
an int64 embedding input) are used by no example; the examples cover a GRU over variable
lengths, an NCHW torchvision CNN, a Keras text classifier and a BERT encoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from contract.manifest import Manifest, ModelEntry
from contract.tensors import read_outputs, sample_inputs
from tests.models.reference import source_answers
from tests.utils.stack import Stack, post_json

pytestmark = pytest.mark.slow
BACKENDS = ("torch", "torch_ort", "triton", "triton_ort", "tf")
TOLERANCE = 1e-4
USER_MODELS = ("usercnn", "userkeras")
EXAMPLES = ("dynrnn", "mobilenet", "textcls", "tinybert")


def _columnar(inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    return {"inputs": {name: value.tolist() for name, value in inputs.items()}}


def _rows(entry: ModelEntry, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    if len(entry.inputs) == 1:
        return {"instances": inputs[entry.input_names[0]].tolist()}
    rows = len(next(iter(inputs.values())))
    return {"instances": [{name: value[i].tolist() for name, value in inputs.items()} for i in range(rows)]}


def _served(stack: Stack, entry: ModelEntry, body: dict[str, Any], backend: str, rows: int) -> dict[str, np.ndarray]:
    response = post_json(stack, f"/v1/models/{entry.name}/predict", body, **{"X-Backend": backend})
    assert response.status_code == 200, f"{entry.name} on {backend}: {response.text}\n{stack.tails()}"
    assert response.json()["backend"] == backend
    return read_outputs(response.json(), entry, rows)


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    assert set(got) == set(want), what
    for name, value in want.items():
        assert got[name].shape == value.shape, f"{what}: {name} {got[name].shape} != {value.shape}"
        worst = float(np.abs(got[name] - value.astype(np.float64)).max())
        assert worst <= TOLERANCE, f"{what}: output {name} differs by {worst:.3g}"


@pytest.mark.parametrize("model", USER_MODELS + EXAMPLES)
def test_every_backend_answers_within_1e4_of_the_source_runtime(
    models_stack: Stack, served: Manifest, served_root: Path, model: str
) -> None:
    entry = served.models[model]
    rows = min(3, entry.max_batch)
    inputs = sample_inputs(entry, rows, seed=21)
    want = source_answers(served_root, entry, inputs)
    for backend in BACKENDS:
        body = _rows(entry, inputs) if backend != "tf" or len(entry.inputs) == 1 else _columnar(inputs)
        _assert_close(_served(models_stack, entry, body, backend, rows), want, f"{model} on {backend}")


@pytest.mark.parametrize(("model", "lengths"), [("dynrnn", (1, 13, 50)), ("textcls", (2, 64)), ("tinybert", (3, 32))])
def test_a_dynamic_sequence_axis_takes_any_length_up_to_its_maximum(
    models_stack: Stack, served: Manifest, served_root: Path, model: str, lengths: tuple[int, ...]
) -> None:
    entry = served.models[model]
    for length in lengths:
        inputs = sample_inputs(entry, 2, seed=length)
        for name, value in list(inputs.items()):
            if value.ndim >= 2:
                inputs[name] = np.ascontiguousarray(value[:, :length])
        if "lengths" in inputs:
            inputs["lengths"] = np.minimum(inputs["lengths"], length)
        want = source_answers(served_root, entry, inputs)
        for backend in BACKENDS:
            got = _served(models_stack, entry, _rows(entry, inputs), backend, 2)
            _assert_close(got, want, f"{model} at length {length} on {backend}")


@pytest.mark.parametrize("model", ["dynrnn", "tinybert", "textcls"])
def test_a_sequence_over_the_maximum_is_refused_naming_the_input(
    models_stack: Stack, served: Manifest, model: str
) -> None:
    entry = served.models[model]
    sequence = next(t for t in entry.inputs if -1 in t.shape)
    inputs = sample_inputs(entry, 1, seed=3)
    too_long = sequence.largest[0] + 1
    inputs = {n: np.resize(v, (1, too_long, *v.shape[2:])) if v.ndim >= 2 else v for n, v in inputs.items()}
    response = post_json(models_stack, f"/v1/models/{model}/predict", _columnar(inputs))
    assert response.status_code == 422, response.text
    assert sequence.name in response.json()["detail"], response.json()


def test_row_and_columnar_requests_get_the_same_answer(models_stack: Stack, served: Manifest) -> None:
    entry = served.models["userkeras"]
    inputs = sample_inputs(entry, 4, seed=5)
    for backend in BACKENDS:
        by_row = _served(models_stack, entry, _rows(entry, inputs), backend, 4)
        by_column = _served(models_stack, entry, _columnar(inputs), backend, 4)
        _assert_close(by_row, by_column, f"userkeras rows vs columns on {backend}")


@pytest.mark.parametrize("model", ["usercnn", "tinybert"])
def test_compare_reports_every_backend_in_agreement(models_stack: Stack, served: Manifest, model: str) -> None:
    entry = served.models[model]
    response = post_json(models_stack, f"/v1/models/{model}/compare", _rows(entry, sample_inputs(entry, 2, seed=8)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(r["backend"] for r in body["results"]) == sorted(BACKENDS), body
    assert body["max_abs_diff"] <= TOLERANCE, body


def test_stats_count_requests_to_a_brought_model(models_stack: Stack, served: Manifest) -> None:
    entry = served.models["usercnn"]

    def count() -> int:
        stats = httpx.get(f"{models_stack.info.gateway}/v1/stats", timeout=30).json()
        return int(stats["models"].get("usercnn", {}).get("torch", {}).get("since_reset", {}).get("count", 0))

    before = count()
    for _ in range(3):
        _served(models_stack, entry, _rows(entry, sample_inputs(entry, 1, seed=1)), "torch", 1)
    assert count() == before + 3


def test_the_load_test_and_its_report_run_on_a_brought_model(models_stack: Stack, tmp_path: Path) -> None:
    """``make run MODEL=tinybert``'s runner: payloads from the sample, every target served, parity in the report."""
    import subprocess
    import sys

    from tests.utils.servers import REPO

    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "loadtests", "run", "--profile", "quick", "--model", "tinybert",
           "--stack", str(models_stack.run_dir / "stack.json"), "--out", str(reports)]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, env=models_stack.env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{models_stack.tails()}"
    out = next(reports.iterdir())
    results = json.loads((out / "results.json").read_text())
    assert results["model"] == "tinybert"
    assert results["model_entry"]["source"]["format"] == "torch_export"
    for run in results["comparison"]["runs"]:
        assert run["figure"]["requests"] > 0, run
        assert run["figure"]["failures"] == 0, run
    markdown = (out / "report.md").read_text()
    assert "## Model" in markdown
    assert "Brought as torch_export (tinybert.pt2)" in markdown
    for kind in ("onnx", "tf"):
        for output in ("output_0", "output_1"):  # a torch.export program's outputs are positional: pooled, logits
            assert f"| {kind} | torch.export | {output} |" in markdown, markdown


def test_models_list_shows_origin_tensors_parity_and_artifacts(served_root: Path, served: Manifest) -> None:
    from tests.models.conftest import Cli

    listing = Cli(served_root).ok("list")
    block = listing.split("usercnn\n", 1)[1].split("\n\n")[0]
    assert "origin:    user (onnx: cnn.onnx)" in block
    assert "inputs:    image [3, 16, 16] float32" in block
    parity = served.models["usercnn"].parity
    line = next(x for x in block.splitlines() if x.startswith("  parity:"))
    for kind in ("torchscript", "tf"):
        assert f"{kind} {parity[kind].max_abs:.1e}" in line, line
    assert line.endswith("(max abs difference from ONNX Runtime; tolerance 0.0001)"), line
    assert "artifacts: mar, mar_ort, onnx, source, tf, torchscript" in block
