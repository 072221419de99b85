"""The Open Inference Protocol's tensors against a model's contract: JSON and binary, every bad input a 4xx."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from contract.oip import (
    HEADER_LENGTH,
    RequestedOutput,
    expected_text,
    header_length,
    metadata_shape,
    read_rest_request,
    read_rest_response,
    rest_request,
    rest_response,
)
from contract.tensors import InputError, OutputError, check_output_arrays
from tests.contract.test_tensors import DIGITS, TEXT

DIGITS_EXPECTED = "model digits takes input x (FP32, shape [N, 8, 8]), N from 1 to 4"


def _x(rows: int = 2) -> np.ndarray:
    return np.arange(rows * 64, dtype=np.float32).reshape(rows, 8, 8) / 7


def _json(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def _binary(tensors: list[tuple[dict[str, Any], bytes]], **extra: Any) -> tuple[bytes, str]:
    """A binary body: each tensor's description gets ``binary_data_size`` of its bytes."""
    described = [{**t, "parameters": {"binary_data_size": len(raw)}} for t, raw in tensors]
    head = _json(described, **extra)
    return head + b"".join(raw for _, raw in tensors), str(len(head))


def _refused(body: bytes, header: str | None = None, entry: Any = DIGITS, status: int = 400) -> str:
    with pytest.raises(InputError) as caught:
        read_rest_request(body, header, entry)
    assert caught.value.status == status
    return caught.value.message


def test_expected_text_and_metadata_shapes() -> None:
    assert expected_text(DIGITS) == DIGITS_EXPECTED
    assert (
        expected_text(TEXT)
        == "model text takes inputs ids (INT64, shape [N, ≤6]), mask (BOOL, shape [N, ≤6]), N from 1 to 3"
    )
    assert metadata_shape(DIGITS.inputs[0]) == [-1, 8, 8]
    assert metadata_shape(TEXT.inputs[0]) == [-1, -1]


@pytest.mark.parametrize("nested", [False, True])
def test_json_tensor_flat_or_nested(nested: bool) -> None:
    x = _x()
    data = x.tolist() if nested else x.ravel().tolist()
    request = read_rest_request(
        _json([{"name": "x", "shape": [2, 8, 8], "datatype": "FP32", "data": data}]), None, DIGITS
    )
    np.testing.assert_array_equal(request.arrays["x"], x)
    assert request.rows == 2
    assert request.outputs == (RequestedOutput("probabilities", False),)


def test_binary_tensor_round_trip_and_binary_output_default() -> None:
    body, length = rest_request({"x": _x(3)}, DIGITS)
    request = read_rest_request(body, str(length), DIGITS)
    np.testing.assert_array_equal(request.arrays["x"], _x(3))
    assert request.outputs == (RequestedOutput("probabilities", True),)  # binary_data_output: true


def test_several_inputs_int64_bool_and_dynamic_axis() -> None:
    ids = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    mask = np.array([[True, False, True], [False, False, True]])
    body, length = rest_request({"ids": ids, "mask": mask}, TEXT)
    request = read_rest_request(body, str(length), TEXT)
    np.testing.assert_array_equal(request.arrays["ids"], ids)
    np.testing.assert_array_equal(request.arrays["mask"], mask)
    mixed = _json(
        [
            {"name": "mask", "shape": [2, 3], "datatype": "BOOL", "data": mask.ravel().tolist()},
            {"name": "ids", "shape": [2, 3], "datatype": "INT64", "data": ids.tolist()},
        ]
    )
    request = read_rest_request(mixed, None, TEXT)
    assert list(request.arrays) == ["ids", "mask"]  # the contract's order, whatever the caller's
    assert request.arrays["ids"].dtype == np.int64
    assert request.arrays["mask"].dtype == np.bool_


def test_requested_outputs_their_order_and_binary_flags() -> None:
    body = _json(
        [{"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]},
         {"name": "mask", "shape": [1, 2], "datatype": "BOOL", "data": [True, True]}],
        outputs=[{"name": "pooled", "parameters": {"binary_data": True}}, {"name": "logits"}],
        parameters={"binary_data_output": False},
        id="req-7",
    )  # fmt: skip
    request = read_rest_request(body, None, TEXT)
    assert request.outputs == (RequestedOutput("pooled", True), RequestedOutput("logits", False))
    assert request.id == "req-7"


def test_rest_response_json_and_binary_read_back() -> None:
    logits = np.array([[0.25, 0.75]], dtype=np.float32)
    pooled = np.array([[1.5, -2.0, 0.125]], dtype=np.float16)
    outputs = {"logits": logits, "pooled": pooled}
    wanted = (RequestedOutput("pooled", True), RequestedOutput("logits", False))
    body, length = rest_response(TEXT, outputs, wanted, model_version="1", request_id="a", parameters={"b": "c"})
    assert length is not None
    head = json.loads(body[:length])
    assert head == {
        "model_name": "text",
        "model_version": "1",
        "id": "a",
        "parameters": {"b": "c"},
        "outputs": [
            {"name": "pooled", "datatype": "FP16", "shape": [1, 3], "parameters": {"binary_data_size": 6}},
            {"name": "logits", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]},
        ],
    }
    found = read_rest_response(body, str(length), TEXT, rows=1)
    np.testing.assert_array_equal(found["pooled"], pooled)
    np.testing.assert_array_equal(found["logits"], logits)
    only_json, none = rest_response(TEXT, outputs, (RequestedOutput("logits", False),))
    assert none is None
    assert json.loads(only_json)["outputs"][0]["data"] == [0.25, 0.75]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"datatype": "FP64"}, f'input x: datatype "FP64"; model digits takes it as FP32; {DIGITS_EXPECTED}'),
        ({"datatype": "FLOAT"}, 'input x: unknown datatype "FLOAT"; model digits takes it as FP32'),
        (
            {"datatype": "BYTES", "data": ["a"]},
            "input x: BYTES tensors are not supported (no duoserve model takes strings)",
        ),
        ({"shape": [2, 64]}, "input x: shape [2, 64] does not fit"),
        ({"shape": [0, 8, 8], "data": []}, "input x: shape [0, 8, 8] does not fit"),
        ({"shape": [2, 8, -8]}, "input x: shape must be a list of non-negative integers, got [2, 8, -8]"),
        ({"shape": "2,8,8"}, "input x: shape must be a list of non-negative integers"),
        ({"data": [1.0] * 127}, "input x: data holds 127 elements, but shape [2, 8, 8] has 128"),
        ({"data": [True] * 128}, "input x: non-numeric value at x.data[0] = true"),
        ({"data": ["1"] * 128}, "input x: data cannot be read as FP32"),
        ({"data": [[1.0] * 64, [2.0] * 64]}, "input x: data is nested as [2, 64], not as its shape [2, 8, 8]"),
        ({"name": "y"}, f'unknown input "y"; {DIGITS_EXPECTED}'),
        ({"name": 3}, "every input needs a string name; got 3"),
        ({"parameters": "binary"}, "input x: parameters must be an object"),
    ],
)
def test_bad_json_tensors_are_400_naming_the_problem(tensor: dict[str, Any], message: str) -> None:
    good = {"name": "x", "shape": [2, 8, 8], "datatype": "FP32", "data": _x().ravel().tolist()}
    assert _refused(_json([{**good, **tensor}])).startswith(message)


def test_too_many_instances_is_413() -> None:
    body = _json([{"name": "x", "shape": [5, 8, 8], "datatype": "FP32", "data": [0.0] * 320}])
    assert _refused(body, status=413).startswith("input x holds 5 instances, more than 4")


def test_missing_duplicate_and_disagreeing_inputs() -> None:
    ids = {"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}
    mask = {"name": "mask", "shape": [2, 2], "datatype": "BOOL", "data": [True] * 4}
    assert _refused(_json([ids]), entry=TEXT).startswith("missing input mask; model text takes inputs")
    assert _refused(_json([ids, ids]), entry=TEXT).startswith("input ids appears twice")
    assert _refused(_json([ids, mask]), entry=TEXT).startswith("the inputs differ in their first (batch) dimension")
    assert _refused(_json([])).startswith('"inputs" must be a non-empty list')
    assert _refused(b'{"instances": [[1]]}').startswith('"inputs" must be a non-empty list')
    assert _refused(b"[1, 2]").startswith("request must be a JSON object")
    assert _refused(b'{"inputs": [{"name": "x", "data": NaN}]}').startswith("request body contains NaN")


def test_integer_and_bool_values_are_checked() -> None:
    ids = {"name": "ids", "shape": [1, 2], "datatype": "INT64", "data": [1.5, 2]}
    mask = {"name": "mask", "shape": [1, 2], "datatype": "BOOL", "data": [1, 0]}
    assert "cannot be read as INT64" in _refused(_json([ids, {**mask, "data": [True, False]}]), entry=TEXT)
    assert "cannot be read as BOOL" in _refused(_json([{**ids, "data": [1, 2]}, mask]), entry=TEXT)
    huge = {**ids, "data": [2**63, 1]}
    assert "cannot be read as INT64" in _refused(_json([huge, {**mask, "data": [True, False]}]), entry=TEXT)


def test_requested_outputs_are_checked() -> None:
    x = {"name": "x", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}
    assert (
        _refused(_json([x], outputs=[{"name": "logits"}])) == 'unknown output "logits"; model digits has probabilities'
    )
    assert _refused(_json([x], outputs=[{"name": "probabilities"}] * 2)).startswith(
        "output probabilities requested twice"
    )
    classification = [{"name": "probabilities", "parameters": {"classification": 3}}]
    assert "classification extension is not supported" in _refused(_json([x], outputs=classification))
    assert _refused(_json([x], outputs={"name": "probabilities"})).startswith('"outputs" must be a list of objects')
    binary = [{"name": "probabilities", "parameters": {"binary_data": "yes"}}]
    assert _refused(_json([x], outputs=binary)) == "output probabilities: binary_data must be true or false"
    assert (
        _refused(_json([x], parameters={"binary_data_output": 1}))
        == "parameter binary_data_output must be true or false"
    )
    assert _refused(_json([x], id=7)) == '"id" must be a string, got 7'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", "Inference-Header-Content-Length -5 is negative"),
        ("12abc", "Inference-Header-Content-Length '12abc' is not a non-negative integer"),
        ("", "Inference-Header-Content-Length '' is not a non-negative integer"),
        ("1e3", "Inference-Header-Content-Length '1e3' is not a non-negative integer"),
        ("99999", "Inference-Header-Content-Length 99999 points past the body's end (600 bytes)"),
        ("9" * 5000, "Inference-Header-Content-Length 999999999999999999999999 points past the body's end"),
    ],
)
def test_bad_header_lengths(value: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        header_length(value, 600)
    assert caught.value.message.startswith(message)
    assert caught.value.status == 400
    assert header_length(" 42 ", 600) == 42
    assert header_length(None, 600) is None


def test_binary_sizes_must_match_shape_and_body() -> None:
    tensor = {"name": "x", "shape": [2, 8, 8], "datatype": "FP32"}
    raw = _x().tobytes()
    body, length = _binary([(tensor, raw[:-4])])
    assert _refused(body, length).startswith(
        "input x: 508 bytes of binary data, but shape [2, 8, 8] of FP32 is 512 bytes"
    )
    body, length = _binary([(tensor, raw)])
    assert _refused(body[:-1], length).startswith("input x: binary_data_size 512 runs past the body's end (511 bytes")
    assert _refused(body + b"\0", length) == "the body holds 1 bytes after the last binary tensor"
    assert _refused(body, None).endswith(f"(binary tensor data needs the {HEADER_LENGTH} header)")
    head_only = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": 512}}]}).encode()
    assert _refused(head_only, None) == f"input x has binary_data_size, but the request has no {HEADER_LENGTH} header"
    assert _refused(body, "3").startswith("request body is not valid JSON")
    both = json.dumps({"inputs": [{**tensor, "data": [0.0], "parameters": {"binary_data_size": 512}}]}).encode()
    assert _refused(both + raw, str(len(both))) == "input x has both data and binary_data_size; send one"
    negative = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": -1}}]}).encode()
    assert _refused(negative, str(len(negative))) == "input x: binary_data_size must be a non-negative integer"
    neither = json.dumps({"inputs": [tensor]}).encode()
    assert _refused(neither).startswith(f"input x has neither data nor binary_data_size; {DIGITS_EXPECTED}")


def test_binary_values_are_checked() -> None:
    tensor = {"name": "x", "shape": [1, 8, 8], "datatype": "FP32"}
    x = np.zeros((1, 8, 8), dtype=np.float32)
    x[0, 3, 4] = np.nan
    body, length = _binary([(tensor, x.tobytes())])
    assert _refused(body, length).startswith("input x holds a NaN or infinite value at [0, 3, 4]")
    ids = ({"name": "ids", "shape": [1, 2], "datatype": "INT64"}, np.array([[1, 2]], dtype=np.int64).tobytes())
    mask = ({"name": "mask", "shape": [1, 2], "datatype": "BOOL"}, bytes([1, 7]))
    body, length = _binary([ids, mask])
    assert _refused(body, length, entry=TEXT).startswith("input mask: BOOL bytes must be 0 or 1")


def test_read_rest_response_refuses_what_does_not_fit() -> None:
    good, length = rest_response(
        DIGITS, {"probabilities": np.zeros((2, 10), np.float32)}, [RequestedOutput("probabilities", True)]
    )
    assert length is not None
    with pytest.raises(OutputError, match="expected \\[3, 10\\]"):
        read_rest_response(good, str(length), DIGITS, rows=3)
    with pytest.raises(OutputError, match="runs past the answer's end"):
        read_rest_response(good[:-1], str(length), DIGITS, rows=2)
    with pytest.raises(OutputError, match="has no list of outputs"):
        read_rest_response(b'{"predictions": []}', None, DIGITS, rows=2)
    with pytest.raises(OutputError, match="lacks output probabilities"):
        read_rest_response(b'{"outputs": []}', None, DIGITS, rows=2)
    with pytest.raises(OutputError, match="points past the body's end"):
        read_rest_response(good, "99999", DIGITS, rows=2)


def test_check_output_arrays() -> None:
    checked = check_output_arrays({"probabilities": np.ones((2, 10), np.float64)}, DIGITS, 2)
    assert checked["probabilities"].dtype == np.float32
    with pytest.raises(OutputError, match="expected probabilities"):
        check_output_arrays({"other": np.ones((2, 10))}, DIGITS, 2)
    with pytest.raises(OutputError, match="has shape \\[2, 9\\]"):
        check_output_arrays({"probabilities": np.ones((2, 9))}, DIGITS, 2)
    with pytest.raises(OutputError, match="has dtype <U1"):
        check_output_arrays({"probabilities": np.full((2, 10), "a")}, DIGITS, 2)
