from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from contract.manifest import Manifest, ModelEntry, TensorSpec
from loadtests import payload
from tests.utils.servers import REPO


def toy(shape: tuple[int, ...], low: float = -1.0, high: float = 1.0) -> ModelEntry:
    return ModelEntry(
        name="toy",
        inputs=(TensorSpec(name="x", shape=shape, value_range=(low, high)),),
        outputs=(TensorSpec(name="y", shape=(3,)),),
        max_batch=8,
    )


TEXT = ModelEntry(
    name="text",
    inputs=(
        TensorSpec(name="ids", dtype="int64", shape=(-1,), max_shape=(5,), value_range=(3, 9)),
        TensorSpec(name="mask", dtype="int64", shape=(-1,), max_shape=(5,), value_range=(1, 1)),
    ),
    outputs=(TensorSpec(name="y", shape=(2,)),),
    max_batch=4,
)


def test_same_inputs_give_the_same_bytes() -> None:
    spec = toy((2, 3))
    assert payload.body(spec, 4, seed=7, index=2) == payload.body(spec, 4, seed=7, index=2)
    assert payload.pool(spec, 2, 7, 5) == payload.pool(spec, 2, 7, 5)


def test_bytes_are_the_same_in_another_process(manifest: Manifest) -> None:
    code = (
        "from loadtests import payload; import sys; "
        "sys.stdout.buffer.write(payload.body(payload.load_model('digits'), 3, 11, 4))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=True).stdout
    assert out == payload.body(manifest.model("digits"), 3, 11, 4)


def test_seed_index_and_batch_change_the_body() -> None:
    spec = toy((5,))
    bodies = {
        payload.body(spec, 2, 0, 0),
        payload.body(spec, 2, 1, 0),
        payload.body(spec, 2, 0, 1),
        payload.body(spec, 3, 0, 0),
    }
    assert len(bodies) == 4


def test_shape_and_range_come_from_the_manifest() -> None:
    data = np.asarray(json.loads(payload.body(toy((2, 3), low=5.0, high=6.0), 4, 0))["instances"])
    assert data.shape == (4, 2, 3)
    assert data.min() >= 5.0
    assert data.max() <= 6.0


def test_several_inputs_get_row_objects_with_integer_tokens_in_range() -> None:
    body = json.loads(payload.body(TEXT, 3, seed=1))
    assert len(body["instances"]) == 3
    for instance in body["instances"]:
        assert set(instance) == {"ids", "mask"}
        assert len(instance["ids"]) == 5  # a dynamic axis takes its declared maximum
        assert all(isinstance(v, int) and 3 <= v <= 9 for v in instance["ids"])
        assert instance["mask"] == [1] * 5


def test_digits_body_matches_the_real_manifest(manifest: Manifest) -> None:
    entry = manifest.model("digits")
    data = np.asarray(json.loads(payload.body(entry, 2, 0))["instances"])
    (x,) = entry.inputs
    assert data.shape == (2, *x.shape)
    assert x.value_range is not None
    assert x.value_range[0] <= data.min() <= data.max() <= x.value_range[1]


def test_batch_outside_the_manifest_limit_is_refused() -> None:
    with pytest.raises(ValueError, match=r"batch 9 outside 1\.\.8"):
        payload.body(toy((2,)), 9, 0)


def test_unknown_model_names_the_known_ones(manifest: Manifest) -> None:
    with pytest.raises(KeyError, match=r"known: .*digits"):
        payload.load_model("nope")


@pytest.mark.parametrize("encoding", ["v2", "v2_binary"])
def test_v2_bodies_carry_the_same_numbers_as_v1(encoding: payload.Encoding) -> None:
    from contract.oip import HEADER_LENGTH, read_rest_request

    for entry in (toy((2, 3)), TEXT):
        v1 = json.loads(payload.body(entry, 3, seed=4, index=1))["instances"]
        body, headers = payload.encoded(entry, 3, seed=4, index=1, encoding=encoding)
        request = read_rest_request(body, headers.get(HEADER_LENGTH), entry)
        for tensor in entry.inputs:
            mine = [row[tensor.name] for row in v1] if len(entry.inputs) > 1 else v1
            np.testing.assert_array_equal(
                request.arrays[tensor.name], np.asarray(mine, dtype=request.arrays[tensor.name].dtype)
            )
        binary = encoding == "v2_binary"
        assert headers["Content-Type"] == ("application/octet-stream" if binary else "application/json")
        assert (HEADER_LENGTH in headers) is binary
    assert payload.encoded(TEXT, 2, 0, encoding="v1") == (
        payload.body(TEXT, 2, 0),
        {"Content-Type": "application/json"},
    )
    assert payload.encoded_pool(TEXT, 2, 0, 3, encoding=encoding) == [
        payload.encoded(TEXT, 2, 0, i, encoding=encoding) for i in range(3)
    ]
