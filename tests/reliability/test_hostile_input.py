"""Hand-written hostile requests against the real stack: each one gets its 4xx and a message, nothing dies.

The stack's own gateway takes the requests that need its default limits; a gateway of our
own (small body limit, short body and header timeouts) takes the ones that would otherwise
cost 128 MiB or 30 s to provoke.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.reliability._support import Gateway, body_of, digits_body, raw_exchange, running_gateway, status_of
from tests.utils.stack import Stack

pytestmark = pytest.mark.slow
JSON = {"Content-Type": "application/json"}
ZERO_ROW = [0.0] * 8


@pytest.fixture(scope="module")
def tight(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with a 1 MB body limit, a 1 s body timeout and a 1 s header timeout."""
    with running_gateway(
        stack,
        tmp_path_factory.mktemp("tight"),
        GATEWAY_MAX_BODY_BYTES="1000000",
        GATEWAY_BODY_TIMEOUT_S="1",
        GATEWAY_HEADER_TIMEOUT_S="1",
    ) as gateway:
        yield gateway


def _post(url: str, content: bytes, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    headers = JSON if headers is None else headers
    return httpx.post(f"{url}/v1/models/digits/predict", content=content, headers=headers, timeout=60, **kwargs)


def _instance_with(value: str) -> bytes:
    """A digits body whose first pixel is the literal JSON ``value``."""
    rows = ",".join(["[" + ",".join([value] + ["0"] * 7) + "]"] + [json.dumps(ZERO_ROW)] * 7)
    return ('{"instances": [[' + rows + "]]}").encode()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def _stack_survives(stack: Stack) -> Iterator[None]:
    """After every hostile case the stack's gateway still answers a good request."""
    yield
    response = _post(stack.info.gateway, digits_body())
    assert response.status_code == 200, f"{response.text}\n{stack.tails()}"


def test_declared_huge_body_is_refused_before_it_is_sent(stack: Stack) -> None:
    head = (
        "POST /v1/models/digits/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {300 * 1024 * 1024}\r\n\r\n"
    )
    raw = raw_exchange(_port(stack.info.gateway), [head.encode(), b'{"instances": ['], timeout_s=10)
    assert status_of(raw) == 413, raw[:300]
    assert body_of(raw)["detail"] == f"request body of {300 * 1024 * 1024} bytes exceeds the limit of 134217728 bytes"


def test_undeclared_chunked_body_is_cut_off_at_the_limit(tight: Gateway) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"instances": ['
        while sent < 3_000_000:  # 3x the limit, chunked (no Content-Length)
            sent += 65536
            yield b"0," * 32768

    response = httpx.post(f"{tight.url}/v1/models/digits/predict", content=chunks(), headers=JSON, timeout=30)
    assert response.status_code == 413
    assert response.json()["detail"] == "request body exceeds the limit of 1000000 bytes"


def test_deeply_nested_json_is_422(stack: Stack) -> None:
    for body in (
        b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"instances": [' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"]}",
    ):
        response = _post(stack.info.gateway, body)
        assert response.status_code == 422
        assert response.json()["detail"] == "request body is nested too deeply"


def test_million_element_instance_is_422_naming_the_shape(stack: Stack) -> None:
    response = _post(stack.info.gateway, json.dumps({"instances": [[0.0] * 1_000_000]}).encode())
    assert response.status_code == 422
    assert response.json()["detail"].startswith("instance 0 has shape [1000000]; model digits expects")
    assert "each of shape [8, 8]" in response.json()["detail"]


def test_million_elements_as_instances_is_413(stack: Stack) -> None:
    response = _post(stack.info.gateway, json.dumps({"instances": [[ZERO_ROW] * 8] * 15_625}).encode())
    assert response.status_code == 413
    assert response.json()["detail"].startswith('"instances" holds 15625 instances, more than 512;')


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "request body contains NaN; instances must hold finite numbers"),
        ("Infinity", "request body contains Infinity; instances must hold finite numbers"),
        ("-Infinity", "request body contains -Infinity; instances must hold finite numbers"),
        ("1e999", "instance 0 holds a value at [0][0] that is NaN, infinite or beyond float32's range"),
        ('"7"', 'non-numeric value at instances[0][0][0] = "7"; model digits expects'),
        ("true", "non-numeric value at instances[0][0][0] = true; model digits expects"),
        ("null", "non-numeric value at instances[0][0][0] = null; model digits expects"),
        ("[1, 2]", "instance 0 is ragged (its rows differ in length); model digits expects"),
        ('{"x": 1}', 'non-numeric value at instances[0][0][0] = {"x": 1}; model digits expects'),
    ],
)
def test_non_numbers_in_tensors_are_422(stack: Stack, value: str, message: str) -> None:
    response = _post(stack.info.gateway, _instance_with(value))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(message), detail


@pytest.mark.parametrize(
    ("headers", "shown"),
    [
        ({"Content-Type": "text/plain"}, "'text/plain'"),
        ({}, "'none'"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "'application/x-www-form-urlencoded'"),
        ({"Content-Type": "application/jsonx"}, "'application/jsonx'"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, "'multipart/form-data; boundary=x'"),
    ],
)
def test_wrong_content_type_is_415(stack: Stack, headers: dict[str, str], shown: str) -> None:
    response = _post(stack.info.gateway, digits_body(), headers)
    assert response.status_code == 415
    assert response.json()["detail"] == f"Content-Type must be application/json, got {shown}"


@pytest.mark.parametrize(
    ("body", "status", "start"),
    [
        (b"", 422, "request body is not valid JSON: Expecting value"),
        (b'{"instances": ', 422, "request body is not valid JSON: Expecting value"),
        (b'{"instances": "\xff\xfe"}', 422, "request body is not UTF-8 JSON"),
        (b"[]", 422, "request body must be a JSON object; got list; model digits expects"),
        (b'{"instances": []}', 422, '"instances" is empty; model digits expects'),
        (b'{"inputs": [[0]]}', 422, "inputs.x[0] has shape [1]; model digits expects"),
        (b'{"examples": [[0]]}', 422, 'request body has no "instances"; model digits expects'),
    ],
)
def test_malformed_bodies_are_4xx(stack: Stack, body: bytes, status: int, start: str) -> None:
    response = _post(stack.info.gateway, body)
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(start)


def test_slow_body_is_cut_off_with_408(tight: Gateway) -> None:
    head = (
        b"POST /v1/models/digits/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    started = time.monotonic()
    raw = raw_exchange(tight.port, [head] + [b" "] * 40, gap_s=0.1, timeout_s=10)
    assert status_of(raw) == 408, raw[:300]
    assert body_of(raw)["detail"].startswith("request body not received within 1 s")
    assert time.monotonic() - started < 8  # bounded by the body timeout, not by the client


@pytest.mark.parametrize("chunks", [[b""], [b"POST /v1/models/digits/predict HTTP/1.1\r\n"] + [b"X-a: b\r\n"] * 60])
def test_slow_or_missing_headers_are_cut_off_with_408(tight: Gateway, chunks: list[bytes]) -> None:
    started = time.monotonic()
    raw = raw_exchange(tight.port, chunks, gap_s=0.1, timeout_s=10)
    assert status_of(raw) == 408, raw[:300]
    assert body_of(raw)["detail"] == "request headers not received within 1 s"
    assert time.monotonic() - started < 8


@pytest.mark.parametrize("name", ["é😀", "数字", "digits\u202e", "digits\u0000", "%F0%9F%98%80", "a" * 2000])
def test_unicode_and_odd_model_names_are_404(stack: Stack, name: str) -> None:
    url = f"{stack.info.gateway}/v1/models/{quote(name, safe='%')}/predict"
    response = httpx.post(url, content=digits_body(), headers=JSON, timeout=30)
    assert response.status_code == 404, response.text
    detail = response.json()["detail"]
    assert detail.startswith("unknown model ")
    assert detail.endswith("served models: digits, mlp, resnet")
    assert len(detail) < 200  # the name is cut, not echoed whole


TRAVERSALS = [
    "/v1/models/..%2F..%2Fmodels/predict",
    "/v1/models/..%252F..%252Fmodels/predict",
    "/v1/models/%2e%2e%2f%2e%2e%2fmodels/predict",
    "/v1/models/../../models/predict",
    "/v1/models/digits%2F..%2F..%2Fmodels/predict",
    "/v1/models/digits/../../../models",
    "/v1/models/..%5C..%5Cmodels/predict",
    "/models",
    "/models/digits",
    "/predictions/digits",
    "/workflows",
    "/api-description",
    "/token",
]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_path_traversal_and_management_paths_are_404_and_never_reach_torchserve(stack: Stack, method: str) -> None:
    access_log = Path(stack.log_dir) / "torch_api" / "access_log.log"
    before = access_log.read_text(errors="replace").splitlines() if access_log.exists() else []
    port = _port(stack.info.gateway)
    for path in TRAVERSALS:
        body = digits_body()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        raw = raw_exchange(port, [head + body], timeout_s=10)
        status = status_of(raw)
        assert status in (404, 405), f"{method} {path}: {raw[:300]!r}"
        if status == 404:
            assert body_of(raw)["detail"] == "Not Found" or body_of(raw)["detail"].startswith("unknown model ")
    time.sleep(0.5)  # TorchServe logs asynchronously
    after = access_log.read_text(errors="replace").splitlines() if access_log.exists() else []
    new = after[len(before) :]
    # what the gateway may ever ask TorchServe: predictions for a served model, and /ping
    allowed = re.compile(r'"(POST /predictions/(digits|digits_ort|mlp|mlp_ort|resnet|resnet_ort)|GET /ping) HTTP')
    stray = [line for line in new if not allowed.search(line) and "/token" not in line]
    assert not stray, stray
