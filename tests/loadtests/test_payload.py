from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from loadtests import payload
from tests.utils.servers import REPO


def fake_manifest(shape: list[int | None], low: float = -1.0, high: float = 1.0) -> dict[str, Any]:
    return {
        "models": {
            "toy": {
                "input": {"shape": shape, "value_range": [low, high], "dtype": "float32", "name": "x"},
                "output": {"shape": [None, 3]},
                "max_batch": 8,
            }
        }
    }


def test_same_inputs_give_the_same_bytes() -> None:
    spec = payload.ModelInput.from_manifest(fake_manifest([None, 2, 3]), "toy")
    assert payload.body(spec, 4, seed=7, index=2) == payload.body(spec, 4, seed=7, index=2)
    assert payload.pool(spec, 2, 7, 5) == payload.pool(spec, 2, 7, 5)


def test_bytes_are_the_same_in_another_process(manifest: dict[str, Any]) -> None:
    code = (
        "from loadtests import payload; import sys; "
        "sys.stdout.buffer.write(payload.body(payload.load_input('digits'), 3, 11, 4))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=True).stdout
    assert out == payload.body(payload.ModelInput.from_manifest(manifest, "digits"), 3, 11, 4)


def test_seed_index_and_batch_change_the_body() -> None:
    spec = payload.ModelInput.from_manifest(fake_manifest([None, 5]), "toy")
    bodies = {
        payload.body(spec, 2, 0, 0),
        payload.body(spec, 2, 1, 0),
        payload.body(spec, 2, 0, 1),
        payload.body(spec, 3, 0, 0),
    }
    assert len(bodies) == 4


def test_shape_and_range_come_from_the_manifest() -> None:
    spec = payload.ModelInput.from_manifest(fake_manifest([None, 2, 3], low=5.0, high=6.0), "toy")
    assert spec.shape == (2, 3)
    assert spec.outputs == (3,)
    data = np.asarray(json.loads(payload.body(spec, 4, 0))["instances"])
    assert data.shape == (4, 2, 3)
    assert data.min() >= 5.0
    assert data.max() <= 6.0


def test_digits_body_matches_the_real_manifest(manifest: dict[str, Any]) -> None:
    spec = payload.ModelInput.from_manifest(manifest, "digits")
    data = np.asarray(json.loads(payload.body(spec, 2, 0))["instances"])
    assert data.shape == (2, *manifest["models"]["digits"]["input"]["shape"][1:])
    low, high = manifest["models"]["digits"]["input"]["value_range"]
    assert low <= data.min() <= data.max() <= high


def test_batch_outside_the_manifest_limit_is_refused() -> None:
    spec = payload.ModelInput.from_manifest(fake_manifest([None, 2]), "toy")
    with pytest.raises(ValueError, match=r"batch 9 outside 1\.\.8"):
        payload.body(spec, 9, 0)


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: toy"):
        payload.ModelInput.from_manifest(fake_manifest([None, 2]), "nope")
