"""Fixtures for brought models: the examples (converted once per recipe), models made here, and a stack serving them.

- ``examples_root``: ``artifacts/examples/``, the four examples added by ``python -m
  examples add`` (a no-op when their recipes have not changed);
- ``user_models``: models a user might bring that no example uses (:mod:`tests.models.builders`);
- ``served_root``: a copy of ``examples_root`` plus the user models' ONNX file and Keras
  SavedModel, added through the ``duoserve`` command;
- ``models_stack``: the native stack (TorchServe, the TF server, the gateway) serving ``served_root``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.artifacts import default_root
from contract.manifest import Manifest, read_manifest
from tests.utils.servers import REPO
from tests.utils.stack import Stack, running_stack


@dataclass
class Cli:
    """``duoserve models ...`` run as the user runs it, against one artifacts root."""

    root: Path

    def __call__(self, *args: str | Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stack.models.cli", "models", *map(str, args), "--root", str(self.root)],
            cwd=REPO, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def ok(self, *args: str | Path) -> str:
        done = self(*args)
        assert done.returncode == 0, f"duoserve models {' '.join(map(str, args))}: {done.stdout}\n{done.stderr}"
        return done.stdout


def build_user_models(out: Path) -> Path:
    for kind in ("onnx_cnn", "torchscript_x", "keras_savedmodel", "keras_savedmodel_x", "bad_onnx"):
        done = subprocess.run(
            [sys.executable, "-m", "tests.models.builders", kind, str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"building {kind}: {done.stderr[-2000:]}"
    return out


@pytest.fixture(scope="session")
def user_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_user_models(tmp_path_factory.mktemp("user-models"))


@pytest.fixture(scope="session")
def examples_root() -> Path:
    root = default_root() / "examples"
    done = subprocess.run(
        [sys.executable, "-m", "examples", "add", "--root", str(root)], cwd=REPO, capture_output=True, text=True,
        timeout=3600,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"python -m examples add failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return root


@pytest.fixture(scope="session")
def served_root(examples_root: Path, user_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served") / "artifacts"
    shutil.copytree(examples_root, root, ignore=shutil.ignore_patterns(".models.lock", ".staging"))
    cli = Cli(root)
    cli.ok("add", "usercnn", user_models / "cnn.onnx")
    cli.ok("add", "userkeras", user_models / "ksaved", "--input", "cat:-1,6:int64:0:19")
    return root


@pytest.fixture(scope="session")
def served(served_root: Path) -> Manifest:
    return read_manifest(served_root)


@pytest.fixture(scope="session")
def models_stack(served_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        # Triton serves every archive's artifact too (its model names are TorchServe's archive names)
        with running_stack(
            tmp_path_factory.mktemp("models-stack"), artifacts=served_root, triton_models="all"
        ) as running:
            yield running
    except RuntimeError as exc:
        pytest.fail(str(exc))
