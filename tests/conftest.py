"""Shared fixtures: the built artifacts (``make artifacts`` runs before ``make test``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from contract.artifacts import default_root
from contract.manifest import Manifest, read_manifest


@pytest.fixture(scope="session")
def artifacts_root() -> Path:
    root = default_root()
    if not (root / "manifest.json").exists():
        pytest.fail(f"{root}/manifest.json is missing: run `make artifacts` (make test does it first)")
    return root


@pytest.fixture(scope="session")
def manifest(artifacts_root: Path) -> Manifest:
    return read_manifest(artifacts_root)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The whole native stack (all models), started once per session on free ports."""
    from tests.utils.stack import running_stack

    try:
        with running_stack(tmp_path_factory.mktemp("stack")) as running:
            yield running
    except RuntimeError as exc:
        pytest.fail(str(exc))
