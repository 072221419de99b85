"""Every class of bad REST request: TF Serving's status and error text, and the server keeps serving."""

from __future__ import annotations

import socket

import numpy as np
import pytest

X10 = "[" + ",".join(["0.5"] * 10) + "]"
PREDICT = "/v1/models/mlp:predict"


def assert_still_serving(http) -> None:
    response = http.post(PREDICT, json={"instances": [[0.5] * 10]})
    assert response.status_code == 200, response.text
    assert np.asarray(response.json()["predictions"]).shape == (1, 1)


def _element(i: int, message: str) -> str:
    return f"Failed to process element: {i} of 'instances' list. Error: INVALID_ARGUMENT: {message}"


BAD_POSTS = [
    ("malformed json", PREDICT, b'{"instances": [1,', 400, "JSON Parse error: Expecting value at offset: 17"),
    ("empty body", PREDICT, b"", 400, "JSON Parse error: The document is empty"),
    ("not utf-8", PREDICT, b'{"instances": [\xff]}', 400,
     "JSON Parse error: Invalid encoding in string. at offset: 15"),
    ("deep nesting", PREDICT, b"[" * 200_000, 400, "JSON Parse error: nested too deeply"),
    ("not an object", PREDICT, b"[1,2]", 400, "JSON Value: [1,2] Is not object"),
    ("both keys", PREDICT, b'{"instances": [[0]], "inputs": [[0]]}', 400,
     'JSON Value: {"instances":[[0]],"inputs":[[0]]} Not formatted correctly expecting only one of '
     "'inputs' or 'instances' keys to exist "),
    ("neither key", PREDICT, b'{"foo": 1}', 400, "Missing 'inputs' or 'instances' key"),
    ("instances not a list", PREDICT, b'{"instances": 3}', 400,
     "JSON Value: {\"instances\":3} Excepting 'instances' to be an list/array"),
    ("empty instances", PREDICT, b'{"instances": []}', 400,
     "JSON Value: {\"instances\":[]} No values in 'instances' array"),
    ("wrong shape", PREDICT, b'{"instances": [[1, 2, 3]]}', 400,
     "input 'x' has shape [1,3] but signature 'serving_default' expects [-1,10] (-1: any size)"),
    ("wrong rank", PREDICT, b'{"instances": [1, 2]}', 400,
     "input 'x' has shape [2] but signature 'serving_default' expects [-1,10] (-1: any size)"),
    ("ragged rows", PREDICT, b'{"instances": [' + X10.encode() + b", [1, 2]]}", 400,
     "Expecting tensor size: 10 but got: 2"),
    ("string value", PREDICT, b'{"instances": [[1,2,3,4,5,6,7,8,9,"a"]]}', 400,
     _element(0, 'JSON Value: "a" Type: String is not of expected type: float')),
    ("bool value", PREDICT, b'{"instances": [' + X10.encode() + b", [1,2,3,4,5,6,7,8,9,true]]}", 400,
     _element(1, "JSON Value: true Type: True is not of expected type: float")),
    ("null value", PREDICT, b'{"instances": [[null,2,3,4,5,6,7,8,9,1]]}', 400,
     _element(0, "JSON Value: null Type: Null is not of expected type: float")),
    ("nested too deep in a row", PREDICT, b'{"instances": [[[1],2,3,4,5,6,7,8,9,1]]}', 400,
     _element(0, "JSON Value: 2 found at incorrect level: 2 in the JSON DOM. Expected at level: 2")),
    ("NaN", PREDICT, b'{"instances": [[NaN,2,3,4,5,6,7,8,9,1]]}', 400,
     "JSON Value: NaN is not a finite number; duoserve-compat refuses NaN and Infinity"),
    ("-Infinity", PREDICT, b'{"instances": [[-Infinity,2,3,4,5,6,7,8,9,1]]}', 400,
     "JSON Value: -Infinity is not a finite number; duoserve-compat refuses NaN and Infinity"),
    ("beyond float32", PREDICT, b'{"instances": [[1e39,2,3,4,5,6,7,8,9,1]]}', 400,
     _element(0, "Cannot convert JSON value: 1e+39 to float without loss of precision.")),
    ("columnar string", PREDICT, b'{"inputs": [[1,2,3,4,5,6,7,8,9,"a"]]}', 400,
     'JSON Value: "a" Type: String is not of expected type: float'),
    ("columnar missing input", PREDICT, b'{"inputs": {"y": [' + X10.encode() + b"]}}", 400,
     "Missing named input: x in 'inputs' object."),
    ("row object with a wrong key", PREDICT, b'{"instances": [{"y": ' + X10.encode() + b"}]}", 400,
     "Failed to process element: 0 of 'instances' list. JSON object: {\"y\":[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,"
     '0.5,0.5]} must only have keys: x'),
    ("signature name not a string", PREDICT, b'{"signature_name": 3, "instances": [[0]]}', 400,
     'JSON Value: {"signature_name":3,"instances":[[0]]} not formatted correctly. '
     "'signature_name' key must be a string value."),
    ("unknown signature", PREDICT, b'{"signature_name": "foo", "instances": [' + X10.encode() + b"]}", 400,
     'Serving signature name: "foo" not found in signature def'),
    ("unknown model", "/v1/models/nope:predict", b'{"instances": [[0]]}', 404,
     "Servable not found for request: Latest(nope)"),
    ("unknown version", "/v1/models/mlp/versions/7:predict", b'{"instances": [[0]]}', 404,
     "Servable not found for request: Specific(mlp, 7)"),
    ("version not a number", "/v1/models/mlp/versions/x1:predict", b'{"instances": [[0]]}', 400,
     "Failed to convert version: x1 to numeric."),
    ("unknown label", "/v1/models/mlp/labels/canary:predict", b'{"instances": [[0]]}', 400,
     "Unrecognized servable version label: canary"),
    ("classify", "/v1/models/mlp:classify", b'{"examples": []}', 501,
     "classify is not served by duoserve-compat; use predict"),
    ("no method", "/v1/models/mlp", b"{}", 400, "Malformed request: POST /v1/models/mlp"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "message"), [c[1:] for c in BAD_POSTS], ids=[c[0] for c in BAD_POSTS]
)
def test_bad_predict(http, path: str, body: bytes, status: int, message: str) -> None:
    response = http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json() == {"error": message}
    assert response.headers["X-TF-Server"] == "duoserve-compat"
    assert_still_serving(http)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("/v1/models", 400, "Missing model name in request."),
        ("/v1/models/mlp/versions/1/bogus", 400, "Malformed request: GET /v1/models/mlp/versions/1/bogus"),
        ("/v1/models/mlp/versions/7", 404, "Could not find version 7 of model mlp"),
        ("/v1/models/mlp/labels/canary", 400, "Unrecognized servable version label: canary"),
        ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
        ("/v1/models/mlp/versions/7/metadata", 404, "Servable not found for request: Specific(mlp, 7)"),
    ],
)
def test_bad_get(http, path: str, status: int, message: str) -> None:
    response = http.get(path)
    assert response.status_code == status
    assert response.json() == {"error": message}
    assert_still_serving(http)


def test_declared_oversized_body_is_refused_before_reading(tf_server, http) -> None:
    declared = 200 * 1024 * 1024
    head = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", tf_server.rest_port), timeout=10) as sock:
        sock.sendall(head + b'{"instances": [')  # a few bytes of a body that never comes
        answer = b""
        while b"}" not in answer.split(b"\r\n\r\n", 1)[-1]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    limit = 128 * 1024 * 1024
    expected = f"Request body of {declared} bytes exceeds the limit of {limit} bytes (TF_API_MAX_BODY_BYTES)"
    assert expected.encode() in rest
    assert_still_serving(http)
