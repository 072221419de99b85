"""JSON tensors against a model's contract: every bad input class gets a 4xx naming what was expected."""

from __future__ import annotations

import json

import numpy as np
import pytest

from contract.manifest import ModelEntry, TensorSpec
from contract.tensors import (
    InputError,
    OutputError,
    parse_request,
    read_outputs,
    render_outputs,
    request_body,
    sample_inputs,
)

DIGITS = ModelEntry(
    name="digits",
    inputs=(TensorSpec(name="x", shape=(8, 8), value_range=(0, 16)),),
    outputs=(TensorSpec(name="probabilities", shape=(10,)),),
    max_batch=4,
)
#: Two named inputs with a dynamic sequence axis (up to 6), int64 token ids and a bool mask; two outputs.
TEXT = ModelEntry(
    name="text",
    inputs=(
        TensorSpec(name="ids", dtype="int64", shape=(-1,), max_shape=(6,), value_range=(0, 99)),
        TensorSpec(name="mask", dtype="bool", shape=(-1,), max_shape=(6,)),
    ),
    outputs=(TensorSpec(name="logits", shape=(2,)), TensorSpec(name="pooled", dtype="float16", shape=(3,))),
    max_batch=3,
)
EXPECTED = 'model digits expects {"instances": [...]} with 1 to 4 instances, each of shape [8, 8] (float32)'
TEXT_EXPECTED = (
    'model text expects {"instances": [{"ids": ..., "mask": ...}, ...]} or {"inputs": {"ids": ..., "mask": ...}} '
    "with 1 to 3 instances, each with ids of shape [≤6] (int64), mask of shape [≤6] (bool)"
)


def _image(value: object = 1.0) -> list[list[object]]:
    return [[value] * 8 for _ in range(8)]


def _parse(body: object) -> np.ndarray:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return parse_request(raw, DIGITS).arrays["x"]


def test_valid_request_gives_float32_batch() -> None:
    out = _parse({"instances": [_image(1), _image(2.5)]})
    assert out.shape == (2, 8, 8)
    assert out.dtype == np.float32
    assert out[1, 3, 3] == 2.5


def test_already_parsed_body_is_accepted() -> None:
    assert parse_request({"instances": [_image()]}, DIGITS).arrays["x"].shape == (1, 8, 8)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"\xff\xfe", 400, "request body is not UTF-8 JSON"),
        ("[1, 2]", 400, f"request body must be a JSON object; got list; {EXPECTED}"),
        ({"signature_name": ""}, 400, f'request body has no "instances"; {EXPECTED}'),
        ({"instances": [_image()], "inputs": [_image()]}, 400, 'request body has both "instances" and "inputs"'),
        ({"inputs": []}, 400, f'"inputs".x is empty; {EXPECTED}'),
        ({"instances": "abc"}, 400, f'"instances" must be a list, got str; {EXPECTED}'),
        ({"instances": []}, 400, f'"instances" is empty; {EXPECTED}'),
        ({"instances": [_image()] * 5}, 413, f'"instances" holds 5 instances, more than 4; {EXPECTED}'),
        ({"instances": [_image()[:7]]}, 400, f"instance 0 has shape [7, 8]; {EXPECTED}"),
        ({"instances": [_image(), [1.0] * 64]}, 400, f"instance 1 has shape [64]; {EXPECTED}"),
        (
            {"instances": [[[1.0] * 8] * 7 + [[1.0] * 7]]},
            400,
            f"instance 0 is ragged (its rows differ in length); {EXPECTED}",
        ),
        ({"instances": [_image(), _image("3")]}, 400, f'non-numeric value at instances[1][0][0] = "3"; {EXPECTED}'),
        ({"instances": [_image(True)]}, 400, f"non-numeric value at instances[0][0][0] = true; {EXPECTED}"),
        ({"instances": [_image(None)]}, 400, f"non-numeric value at instances[0][0][0] = null; {EXPECTED}"),
        ({"instances": [_image({"a": 1})]}, 400, f'non-numeric value at instances[0][0][0] = {{"a": 1}}; {EXPECTED}'),
        ('{"instances": [[[NaN]]]}', 400, "request body contains NaN; instances must hold finite numbers"),
        ('{"instances": [[[-Infinity]]]}', 400, "request body contains -Infinity; instances must hold finite numbers"),
        ("[" * 100_000 + "]" * 100_000, 400, "request body is nested too deeply"),
    ],
)
def test_bad_input_is_named(body: object, status: int, message: str) -> None:
    with pytest.raises(InputError) as info:
        _parse(body)
    assert info.value.status == status
    assert info.value.message.startswith(message)


def test_overflowing_value_is_located() -> None:
    image = _image()
    image[2][5] = 1e39  # finite in JSON, infinite in float32
    with pytest.raises(InputError, match=r"instance 1 holds a value at \[2\]\[5\] that is NaN, infinite"):
        _parse({"instances": [_image(), image]})


def test_deep_nesting_inside_instances_is_refused() -> None:
    deep: object = 1.0
    for _ in range(12):
        deep = [deep]
    with pytest.raises(InputError, match="nested deeper than 8 levels"):
        _parse({"instances": [deep]})


def test_bool_in_body_outside_instances_does_not_trip_the_fast_path() -> None:
    out = _parse({"instances": [_image()], "flag": True})
    assert out.shape == (1, 8, 8)


def test_integer_beyond_float_range_is_refused() -> None:
    image = _image()
    image[0][0] = 10**400
    with pytest.raises(InputError, match="instances could not be read as numbers"):
        _parse({"instances": [image]})


def test_columnar_format_and_objects_work_for_a_single_input() -> None:
    columnar = parse_request({"inputs": [_image(1), _image(2)]}, DIGITS)
    assert columnar.format == "columnar"
    assert columnar.arrays["x"].shape == (2, 8, 8)
    named = parse_request({"inputs": {"x": [_image(3)]}}, DIGITS)
    assert named.arrays["x"][0, 0, 0] == 3
    objects = parse_request({"instances": [{"x": _image(4)}]}, DIGITS)
    assert objects.format == "row"
    assert objects.arrays["x"][0, 7, 7] == 4


def test_named_inputs_dtypes_and_a_dynamic_axis() -> None:
    row = parse_request(
        {"instances": [{"ids": [1, 2, 3], "mask": [True, True, False]}, {"ids": [4, 5, 6], "mask": [True] * 3}]}, TEXT
    )
    assert row.rows == 2
    assert row.arrays["ids"].dtype == np.int64
    assert row.arrays["mask"].dtype == np.bool_
    assert row.arrays["ids"].tolist() == [[1, 2, 3], [4, 5, 6]]
    columnar = parse_request({"inputs": {"ids": [[7] * 6], "mask": [[False] * 6]}}, TEXT)
    assert columnar.arrays["ids"].shape == (1, 6)  # any length up to the declared maximum


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"ids": [1] * 7, "mask": [True] * 7}]}, f"instance 0 (ids) has shape [7]; {TEXT_EXPECTED}"),
        ({"instances": [{"ids": [], "mask": []}]}, "instance 0 (ids) has shape [0]"),
        ({"instances": [{"ids": [1.5], "mask": [True]}]}, "non-integer value at instances[0].ids[0] = 1.5"),
        ({"instances": [{"ids": [True], "mask": [True]}]}, "non-integer value at instances[0].ids[0] = true"),
        ({"instances": [{"ids": [1], "mask": [1]}]}, "non-boolean value at instances[0].mask[0] = 1"),
        ({"instances": [{"ids": ["1"], "mask": [True]}]}, 'non-integer value at instances[0].ids[0] = "1"'),
        ({"instances": [{"ids": [1]}]}, "instance 0 must be an object with the keys ids, mask; got ['ids']"),
        ({"instances": [[1, 2]]}, "instance 0 must be an object with the keys ids, mask; got list"),
        (
            {"instances": [{"ids": [1], "mask": [True]}, {"ids": [1, 2], "mask": [True, True]}]},
            "the instances of ids differ in shape ([1], [2]); one request holds instances of one shape",
        ),
        ({"inputs": {"ids": [[1]]}}, "\"inputs\" has the keys ['ids']; expected ids, mask"),
        ({"inputs": [[1]]}, '"inputs" must be an object with the keys ids, mask'),
        ({"inputs": {"ids": [[1], [2]], "mask": [[True]]}}, 'the tensors of "inputs" differ in their number'),
        ({"inputs": {"ids": [[2**40]], "mask": [[True]]}}, None),
    ],
)
def test_bad_named_inputs_are_named(body: object, message: str | None) -> None:
    if message is None:
        assert parse_request(body, TEXT).arrays["ids"][0, 0] == 2**40
        return
    with pytest.raises(InputError) as info:
        parse_request(body, TEXT)
    assert info.value.status == 400
    assert message in info.value.message


def test_int32_range_and_too_many_instances() -> None:
    small = TEXT.model_copy(update={"inputs": (TensorSpec(name="ids", dtype="int32", shape=(2,)),), "max_batch": 1})
    with pytest.raises(InputError, match="ids holds an integer beyond int32's range"):
        parse_request({"instances": [[2**31, 1]]}, small)
    with pytest.raises(InputError) as info:
        parse_request({"instances": [[1, 2], [3, 4]]}, small)
    assert info.value.status == 413


def test_answers_mirror_the_request_format_and_read_back() -> None:
    outputs = {"logits": np.array([[0.5, 1.5]], np.float32), "pooled": np.array([[1, 2, 3]], np.float16)}
    row = render_outputs(outputs, "row")
    assert row == {"predictions": [{"logits": [0.5, 1.5], "pooled": [1.0, 2.0, 3.0]}]}
    columnar = render_outputs(outputs, "columnar")
    assert columnar == {"outputs": {"logits": [[0.5, 1.5]], "pooled": [[1.0, 2.0, 3.0]]}}
    for answer in (row, columnar):
        back = read_outputs(answer, TEXT, rows=1)
        assert back["pooled"].tolist() == [[1.0, 2.0, 3.0]]
    single = render_outputs({"probabilities": np.zeros((2, 10), np.float32)})
    assert set(single) == {"predictions"}
    assert read_outputs(single, DIGITS, rows=2)["probabilities"].shape == (2, 10)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"error": "x"}, "the answer has neither predictions nor outputs"),
        ({"predictions": [[0.1] * 10]}, "output probabilities has shape [1, 10]; expected [2, 10]"),
        ({"predictions": [[0.1] * 9, [0.1] * 9]}, "output probabilities has shape [2, 9]"),
        ({"predictions": [["a"] * 10, [0.1] * 10]}, "output probabilities is not a numeric tensor"),
        ({"predictions": "no"}, "predictions is not a list"),
    ],
)
def test_a_bad_answer_is_named(answer: object, message: str) -> None:
    with pytest.raises(OutputError, match=message.replace("[", r"\[").replace("*", r"\*")):
        read_outputs(answer, DIGITS, rows=2)


def test_sample_inputs_follow_the_contract_and_round_trip_through_json() -> None:
    arrays = sample_inputs(TEXT, 3, seed=5)
    assert arrays["ids"].shape == (3, 6)
    assert arrays["ids"].dtype == np.int64
    assert 0 <= arrays["ids"].min() <= arrays["ids"].max() <= 99
    assert arrays["mask"].dtype == np.bool_
    assert sample_inputs(TEXT, 3, seed=5)["ids"].tolist() == arrays["ids"].tolist()
    assert sample_inputs(TEXT, 3, seed=6)["ids"].tolist() != arrays["ids"].tolist()
    for fmt in ("row", "columnar"):
        back = parse_request(json.dumps(request_body(arrays, fmt)), TEXT)
        assert back.format == fmt
        assert back.arrays["ids"].tolist() == arrays["ids"].tolist()
        assert back.arrays["mask"].tolist() == arrays["mask"].tolist()


def test_one_dtype_table_feeds_every_codec() -> None:
    from contract import MAR_FILES
    from contract.dtypes import DTYPES
    from contract.manifest import DType
    from contract.oip import DATATYPES, DTYPE_OF

    assert set(DTYPES) == set(DType.__args__)
    assert DATATYPES == {"float32": "FP32", "float16": "FP16", "int64": "INT64", "int32": "INT32", "bool": "BOOL"}
    assert {v: k for k, v in DTYPE_OF.items()} == DATATYPES
    assert "dtypes.py" in MAR_FILES  # tensors.py reads it inside every .mar
