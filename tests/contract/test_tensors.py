"""Every bad input class gets a 4xx and a message naming what was expected."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.common.validation import InputError, parse_request

SHAPE = (8, 8)
EXPECTED = 'model digits expects {"instances": [...]} with 1 to 4 instances, each of shape [8, 8] (float32)'


def _image(value: object = 1.0) -> list[list[object]]:
    return [[value] * 8 for _ in range(8)]


def _parse(body: object) -> np.ndarray:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return parse_request(raw, "digits", SHAPE, 4)


def test_valid_request_gives_float32_batch() -> None:
    out = _parse({"instances": [_image(1), _image(2.5)]})
    assert out.shape == (2, 8, 8)
    assert out.dtype == np.float32
    assert out[1, 3, 3] == 2.5


def test_already_parsed_body_is_accepted() -> None:
    assert parse_request({"instances": [_image()]}, "digits", SHAPE, 4).shape == (1, 8, 8)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"\xff\xfe", 400, "request body is not UTF-8 JSON"),
        ("[1, 2]", 400, f"request body must be a JSON object; got list; {EXPECTED}"),
        ({"inputs": []}, 400, f'request body has no "instances"; {EXPECTED}'),
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
