"""The zoo's CI subset (:data:`examples.zoo.CI`, one small model per family) end to end, as a user runs it.

``python -m examples zoo NAMES --root TMP --no-docs`` builds each model, adds it with
``duoserve models add``, serves it on the torch, torch_ort and tf backends through the
gateway (the stack the other tests use, :mod:`stack.scratch`) and checks each answer
against the source model's own runtime; these tests read what it recorded and the manifest.
Bad zoo files (truncated, corrupt, of another format) are refused in one line, change
nothing, and leave no converter process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contract.manifest import read_manifest
from examples.zoo import CI, ZOO
from examples.zoo.run import BACKENDS, BEGIN, END, STATE, backends_of, table, write_table
from tests.models.test_refusals import _snapshot
from tests.utils.servers import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def zoo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo") / "artifacts"
    cmd = [sys.executable, "-m", "examples", "zoo", *CI, "--root", str(root), "--no-docs", "--force"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return root


@pytest.fixture(scope="module")
def state(zoo_root: Path) -> dict[str, Any]:
    return dict(json.loads((zoo_root / STATE).read_text()))


def _added(state: dict[str, Any], name: str) -> dict[str, Any]:
    record: dict[str, Any] = state[name]
    assert record["added"], f"{name} refused: {record['refusal']}"
    return record


def test_the_ci_subset_covers_every_family() -> None:
    assert {ZOO[name].family for name in CI} == {e.family for e in ZOO.values()}
    assert len(ZOO) >= 16


@pytest.mark.parametrize("name", CI)
def test_each_model_is_added_with_every_artifact_within_its_tolerance(
    zoo_root: Path, state: dict[str, Any], name: str
) -> None:
    record = _added(state, name)
    entry = read_manifest(zoo_root).models[name]
    assert entry.origin == "user"
    assert entry.source is not None
    assert {"mar", "mar_ort", "tf", "onnx"} <= set(entry.artifacts), sorted(entry.artifacts)
    # every artifact models add made names its converter; the source itself is the other one
    assert set(entry.made_by) == set(entry.parity), (entry.made_by, sorted(entry.parity))
    assert len(entry.made_by) >= 2, entry.made_by
    assert entry.missing == {}
    assert record["add_s"] > 0
    assert record["build_s"] > 0
    for kind, parity in entry.parity.items():
        assert parity.max_abs <= parity.tolerance_abs, (kind, parity)
        assert set(parity.outputs) == set(entry.output_names)


@pytest.mark.parametrize("name", CI)
def test_every_backend_answers_through_the_gateway_like_the_source(
    zoo_root: Path, state: dict[str, Any], name: str
) -> None:
    record = _added(state, name)
    entry = read_manifest(zoo_root).models[name]
    rows = min(3, entry.max_batch)
    assert set(record["served"]) == set(BACKENDS), record["served"]
    for backend, result in record["served"].items():
        assert result["status"] == 200, (backend, result)
        assert result["backend"] == backend
        want = {t.name: [rows, *t.largest] for t in entry.outputs}
        assert result["want_shapes"] == want, (backend, result)
        assert result["shapes"] == want, (backend, result)
        assert result["tolerance"] == min(p.tolerance_abs for p in entry.parity.values())
        assert 0 <= result["max_abs"] <= result["tolerance"], (backend, result)
        assert result["ok"]


def test_the_table_has_a_row_per_model_with_its_converters_and_answers(zoo_root: Path, state: dict[str, Any]) -> None:
    text = table(zoo_root, list(CI))
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in text.splitlines()[2:]}
    assert set(rows) == set(CI)
    for name in CI:
        record = state[name]
        assert f"| {ZOO[name].family} |" in rows[name]
        if record["added"]:
            for converter in read_manifest(zoo_root).models[name].made_by.values():
                assert converter in rows[name]
            for backend in BACKENDS:
                assert f"{backend} ✓" in rows[name], rows[name]
        else:
            assert f"refused: {record['refusal'][:40]}" in rows[name]


def test_the_docs_section_is_replaced_not_repeated(zoo_root: Path, tmp_path: Path) -> None:
    doc = tmp_path / "models.md"
    doc.write_text("# Models\n\ntext before\n")
    write_table(zoo_root, doc)
    write_table(zoo_root, doc)
    text = doc.read_text()
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1
    assert text.startswith("# Models\n\ntext before\n\n## The zoo: coverage\n")
    doc.write_text(text.replace(END, END + "\n\ntext after\n"))
    write_table(zoo_root, doc)
    assert doc.read_text().count("## The zoo") == 1
    assert doc.read_text().split(END, 1)[1] == "\n\ntext after\n\n"


def test_an_artifact_a_converter_could_not_make_shows_as_missing_and_is_not_served(
    zoo_root: Path, state: dict[str, Any], tmp_path: Path
) -> None:
    """Partial registration: the torch and tf artifacts without the ONNX one (and so no _ort archive)."""
    manifest = read_manifest(zoo_root)
    name = next(n for n in CI if state[n]["added"] and "onnx" in manifest.models[n].parity)
    entry = manifest.models[name]
    partial = entry.model_copy(
        update={
            "artifacts": {k: v for k, v in entry.artifacts.items() if k not in ("onnx", "mar_ort")},
            "missing": {"onnx": "torch.onnx: no aten::erfinv; tf2onnx: no Erfc"},
        }
    )
    assert backends_of(partial) == ["torch", "triton", "tf"]
    manifest.models[name] = partial
    manifest.write(tmp_path / "manifest.json")
    (tmp_path / STATE).write_text(json.dumps({name: state[name]}))
    (row,) = table(tmp_path, [name]).splitlines()[2:]
    assert "| **missing**: torch.onnx: no aten::erfinv; tf2onnx: no Erfc |" in row, row


# -- bad zoo files --------------------------------------------------------------------------------------


def _refused(root: Path, name: str, path: Path, *args: str) -> str:
    """``models add`` in a session of its own: one line, exit 1, the root unchanged, no process of it left."""
    before = _snapshot(root)
    cmd = [sys.executable, "-m", "stack.models.cli", "models", "add", name, str(path), *args, "--root", str(root)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{out}\n{err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("duoserve: "), err
    assert _snapshot(root) == before, "a refused add changed the artifacts"
    assert not any((root / ".staging").glob("*")), "a refused add left its staging root"
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no converter of that session outlived it
    return lines[0].removeprefix("duoserve: ")


@pytest.fixture(scope="module")
def sources() -> dict[str, Path]:
    """The CI models' source files, as the zoo built them (``examples/zoo/out``)."""
    return {name: ZOO[name].out / ZOO[name].add[0] for name in CI}


def test_a_truncated_keras_file_is_refused(zoo_root: Path, sources: dict[str, Path], tmp_path: Path) -> None:
    whole = sources["mobilenetv3s"].read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(whole[: len(whole) // 2])
    assert _refused(zoo_root, "cut", cut).startswith("cut.keras is not a .keras model Keras loads")


def test_a_corrupt_torch_export_program_is_refused(zoo_root: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "noise.pt2"
    corrupt.write_bytes(np.random.default_rng(0).bytes(8192))
    message = _refused(zoo_root, "noise", corrupt)
    assert message.endswith("noise.pt2: not a torch_export model (it is not the zip archive such a model is)"), message


def test_a_file_of_another_format_under_a_zoo_suffix_is_refused(
    zoo_root: Path, sources: dict[str, Path], tmp_path: Path
) -> None:
    program = next(p for p in sources.values() if p.suffix in (".pt", ".pt2"))
    renamed = tmp_path / "torch.keras"
    renamed.write_bytes(program.read_bytes())  # a zip, but a torch program's
    message = _refused(zoo_root, "renamed", renamed)
    assert message.startswith("torch.keras is not a .keras model Keras loads"), message
    assert "config.json" in message


def test_a_savedmodel_with_a_corrupt_graph_is_refused(zoo_root: Path, sources: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken_savedmodel"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(sources["tf_pooler"].joinpath("saved_model.pb").read_bytes()[:200])
    message = _refused(zoo_root, "broken", broken, "--max-length", "40")
    assert message.startswith("broken_savedmodel is not a SavedModel TensorFlow"), message
    assert "Error parsing message" in message
