"""``duoserve models add`` refuses what it cannot serve faithfully: one line on stderr, exit 1, nothing changed.

"Nothing changed" is checked on the whole artifacts root: every file's path and bytes, before
and after. An interrupted ``add`` (Ctrl-C, kill, SIGKILL) leaves the previous state too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from contract.manifest import read_manifest
from services.process import pid_alive
from stack.models.steps import HOLD_ENV
from tests.models.conftest import Cli
from tests.utils.servers import REPO

pytestmark = pytest.mark.slow


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (the lock file aside) with its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".models.lock"
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, user_models: Path) -> Path:
    """An artifacts root holding one brought model, ``existing`` (a Keras SavedModel)."""
    root = tmp_path_factory.mktemp("refusals") / "artifacts"
    Cli(root).ok("add", "existing", user_models / "other_x")
    return root


def refused(root: Path, *args: str | Path) -> str:
    """Run ``models add ARGS``; assert the refusal contract; return its line (without the ``duoserve:`` prefix)."""
    before = _snapshot(root)
    done = Cli(root)("add", *args)
    assert done.returncode == 1, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("duoserve: "), lines[0]
    assert _snapshot(root) == before, "a refused add changed the artifacts"
    assert not any((root / ".staging").glob("*")), "a refused add left its staging root"
    return lines[0].removeprefix("duoserve: ")


def test_a_file_that_is_not_a_model(root: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "model.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "is not an ONNX model onnx can read" in refused(root, "garbage", garbage)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert "not a model duoserve takes" in refused(root, "notes", notes)
    fake_pt = tmp_path / "weights.pt"
    fake_pt.write_bytes(b"\x80\x04not a zip")
    assert "not a torchscript model" in refused(root, "fakept", fake_pt)


def test_a_truncated_onnx_file(root: Path, user_models: Path, tmp_path: Path) -> None:
    whole = (user_models / "cnn.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(whole[: len(whole) // 2])
    message = refused(root, "cut", cut)
    assert message.startswith("cut.onnx is not an ONNX model onnx can read"), message


def test_an_op_the_converter_cannot_express_is_named(root: Path, user_models: Path) -> None:
    message = refused(root, "hard", user_models / "hardmax.onnx")
    assert "onnx2torch cannot convert this model" in message
    assert "Hardmax" in message


def test_nan_or_inf_in_the_outputs(root: Path, user_models: Path) -> None:
    assert refused(root, "nan", user_models / "nan.onnx") == (
        "the source model's output y holds NaN or infinity on batch 1; nothing to compare"
    )


def test_string_tensors_are_not_supported(root: Path, user_models: Path) -> None:
    message = refused(root, "strings", user_models / "strings.onnx")
    assert "string tensors are not supported" in message


def test_a_name_that_clashes(root: Path, user_models: Path) -> None:
    assert refused(root, "mlp", user_models / "cnn.onnx") == "'mlp' is a built-in model's name; choose another"
    assert refused(root, "existing", user_models / "cnn.onnx") == "model 'existing' exists; add --replace to replace it"
    assert "is not a model name" in refused(root, "Bad-Name", user_models / "cnn.onnx")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("image:-1,1,16,16:float32", "--input image: axis 1 is 1 but the model's is 3"),
        ("image:-1,3,16,16:int64", "--input image: dtype int64 contradicts the model, which declares float32"),
        ("nope:-1,3:float32", "--input nope: the model has no input 'nope' (its inputs: image)"),
        ("image:-1,3,16:float32", "--input image"),
        ("image:-1,x,16,16:float32", "SHAPE must be comma-separated integers"),
    ],
)
def test_input_specs_that_contradict_the_model(root: Path, user_models: Path, spec: str, expected: str) -> None:
    assert expected in refused(root, "cnn", user_models / "cnn.onnx", "--input", spec)


def test_a_sample_that_does_not_fit(root: Path, user_models: Path, tmp_path: Path) -> None:
    wrong_name = tmp_path / "wrong_name.npz"
    np.savez(wrong_name, pixels=np.zeros((2, 3, 16, 16), np.float32))
    assert "the model's inputs are image" in refused(root, "cnn", user_models / "cnn.onnx", "--sample", wrong_name)
    wrong_shape = tmp_path / "wrong_shape.npz"
    np.savez(wrong_shape, image=np.zeros((2, 3, 8, 8), np.float32))
    message = refused(root, "cnn", user_models / "cnn.onnx", "--sample", wrong_shape)
    assert "image has rows of shape [3, 8, 8]" in message
    not_npz = tmp_path / "sample.npz"
    not_npz.write_text("rows")
    assert "not an .npz of arrays" in refused(root, "cnn", user_models / "cnn.onnx", "--sample", not_npz)


def test_a_pair_whose_outputs_disagree(root: Path, user_models: Path) -> None:
    message = refused(
        root, "pair", "--pair", user_models / "mlp_x.pt", user_models / "other_x", "--input", "x:-1,6:float32"
    )
    assert message.startswith("the tf artifact (TensorFlow, made by the --pair SavedModel) disagrees with the source")
    assert "max abs difference" in message
    assert "over the tolerance 0.0001" in message


def test_a_model_over_the_size_limit(root: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.onnx"
    with big.open("wb") as f:  # sparse: no disk used
        f.truncate(2 * 1024**3 + 1)
    assert "over duoserve's limit of 2 GiB per model file" in refused(root, "big", big)


@pytest.fixture
def own_root(root: Path, tmp_path: Path) -> Path:
    """A copy of the module's root for one test that interrupts an add (no test sees another's leftovers)."""
    copy = tmp_path / "artifacts"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".models.lock", ".staging"))
    return copy


def _start_held_add(root: Path, source: Path, hold: Path) -> subprocess.Popen[str]:
    """``models add late SOURCE``, held by :data:`stack.models.steps.HOLD_ENV` while its second step runs."""
    hold.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack.models.cli", "models", "add", "late", str(source), "--root", str(root)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, HOLD_ENV: str(hold)},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (hold / "held").exists():
        assert proc.poll() is None, f"add ended before it reached its second step: {proc.communicate()}"
        assert time.monotonic() < deadline, "add never reached its second step"
        time.sleep(0.1)
    return proc


def _step_pid(hold: Path) -> int:
    return int((hold / "held").read_text())


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_add_leaves_the_previous_state(
    own_root: Path, user_models: Path, tmp_path: Path, how: signal.Signals
) -> None:
    before = _snapshot(own_root)
    proc = _start_held_add(own_root, user_models / "cnn.onnx", tmp_path / "hold")
    os.killpg(proc.pid, how)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "duoserve: interrupted; nothing changed"
    assert _snapshot(own_root) == before
    assert not any((own_root / ".staging").glob("*"))
    assert not pid_alive(_step_pid(tmp_path / "hold")), "the converter step outlived the add"


def test_a_killed_add_is_cleared_by_the_next_command(own_root: Path, user_models: Path, tmp_path: Path) -> None:
    before = read_manifest(own_root)
    proc = _start_held_add(own_root, user_models / "cnn.onnx", tmp_path / "hold")
    assert any((own_root / ".staging").glob("late-*")), "the held add has no staging root"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert read_manifest(own_root) == before
    assert "existing" in Cli(own_root).ok("list")
    # the next command that changes the root clears the dead add's staging root
    assert "no model 'late' to remove" in refused_remove(own_root, "late")
    assert not any((own_root / ".staging").glob("*"))


def refused_remove(root: Path, name: str) -> str:
    done = Cli(root)("remove", name)
    assert done.returncode == 1, done.stdout
    return done.stderr


def test_remove_takes_a_brought_model_and_refuses_a_builtin(tmp_path: Path, user_models: Path) -> None:
    root = tmp_path / "artifacts"
    cli = Cli(root)
    cli.ok("add", "gone", user_models / "other_x")
    kept = sorted(p.relative_to(root) for p in root.rglob("*") if "gone" in p.parts)
    assert kept, "the added model has no artifacts"
    assert "removed gone" in cli.ok("remove", "gone")
    assert "gone" not in read_manifest(root).models
    assert not any("gone" in p.parts for p in root.rglob("*"))
    assert "'mlp' is a built-in model" in refused_remove(root, "mlp")
