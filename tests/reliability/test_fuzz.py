"""schemathesis against the gateway's own OpenAPI schema, on the real stack (bounded case count).

Every response must be a non-5xx that conforms to the schema (status code declared, content
type, body shape, headers); valid and invalid inputs both. The schema holds ``/v1`` and the
Open Inference Protocol's ``/v2``; an operation with two body media types (``/v2``'s infer:
JSON tensors and the binary tensor extension's ``application/octet-stream``) is fuzzed in
each. A second test builds binary bodies with a well-formed header length around fuzzed JSON
headers and raw bytes, which reach deeper than schemathesis' random bytes. The longer run
(>= 1,000 cases) is the CLI command in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.utils.stack import SERVICES, Stack

pytestmark = pytest.mark.slow
#: cases per operation and generation mode (parameterless GETs stop after their one case): about 200 in CI
CASES = int(os.environ.get("RELIABILITY_FUZZ_CASES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_schemathesis_finds_no_5xx_and_no_schema_violation(stack: Stack, mode: GenerationMode) -> None:
    base = stack.info.gateway
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    statuses: Counter[int] = Counter()
    skipped: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 17  # /v1: 8; /v2: 9
    assert {op.label for op in operations} >= {"POST /v2/models/{model}/infer", "GET /v2/models/{model}"}

    variants = [(op, None) for op in operations] + [(op, "digits") for op in operations if "{model}" in op.path]
    cases = [
        (operation, model, body.media_type if len(operation.body) > 1 else None)
        for operation, model in variants
        for body in (list(operation.body) or [None])
    ]
    media: Counter[str] = Counter()
    for operation, model, media_type in cases:
        fixed = {"model": model} if model else None
        if "{version}" in operation.path:
            fixed = {**(fixed or {}), "version": "1"} if model else fixed

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed, media_type=media_type))
        @settings(
            max_examples=CASES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(base_url=base, checks=CHECKS, timeout=30)
            statuses[response.status_code] += 1
            if case.media_type:
                media[case.media_type] += 1

        try:
            fuzz()
        except Unsatisfiable:
            # nothing to negate in an operation whose only parameters are in its path, given or free strings
            # that any value satisfies (GET /v1/models, GET /v2/models/{model}, ...)
            assert mode is GenerationMode.NEGATIVE
            assert not operation.body
            assert not operation.query
            assert not operation.headers
            skipped.append(f"{operation.label} {fixed or ''}".strip())

    assert sum(statuses.values()) >= len(operations)
    assert not [s for s in statuses if s >= 500], statuses
    # both of infer's bodies were sent: JSON tensors and binary ones
    assert media["application/json"] > 0
    assert media["application/octet-stream"] > 0
    print(
        f"schemathesis {mode.value}: {sum(statuses.values())} cases, statuses {dict(statuses)}, "
        f"bodies {dict(media)}, none: {skipped}"
    )
    pids = json.loads((Path(stack.run_dir) / "stack.pids.json").read_text())  # current: other tests restart some
    for service in SERVICES:
        assert _alive(pids[service]), f"{service} died\n{stack.tails()}"
    assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 200


_NAMES = st.sampled_from(["x", "y", "", "x" * 300, "probabilities"])
_DATATYPES = st.sampled_from(["FP32", "FP16", "INT64", "INT32", "BOOL", "BYTES", "FP64", "", "fp32"])
_SHAPES = st.lists(st.integers(min_value=-2, max_value=1100), min_size=0, max_size=4)


@st.composite
def _binary_request(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """A binary-extension body whose header length is right, around a fuzzed JSON header and fuzzed bytes;
    one in four a well-formed mlp request with fuzzed values, backend and output choice (those reach a backend)."""
    if draw(st.integers(0, 3)) == 0:
        rows = draw(st.integers(1, 3))
        values = draw(st.lists(st.floats(-1e3, 1e3, width=32), min_size=10 * rows, max_size=10 * rows))
        binary_output = draw(st.booleans())
        header = {
            "inputs": [{"name": "x", "shape": [rows, 10], "datatype": "FP32",
                        "parameters": {"binary_data_size": 40 * rows}}],
            "parameters": {"binary_data_output": binary_output, "backend": draw(st.sampled_from(["torch", "tf"]))},
        }  # fmt: skip
        head = json.dumps(header).encode()
        raw = struct.pack(f"<{10 * rows}f", *values)
        return "mlp", head + raw, {"Inference-Header-Content-Length": str(len(head))}
    model = draw(st.sampled_from(["mlp", "digits", "nosuchmodel"]))
    inputs = []
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        parameters = draw(st.one_of(st.none(), st.fixed_dictionaries({"binary_data_size": st.integers(-1, 4096)})))
        tensor: dict[str, Any] = {"name": draw(_NAMES), "shape": draw(_SHAPES), "datatype": draw(_DATATYPES)}
        if parameters is not None:
            tensor["parameters"] = parameters
        inputs.append(tensor)
    header: dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        header["parameters"] = {"binary_data_output": draw(st.one_of(st.booleans(), st.just("yes")))}
    if draw(st.booleans()):
        header["outputs"] = [{"name": draw(_NAMES), "parameters": {"binary_data": draw(st.booleans())}}]
    head = json.dumps(header).encode()
    if draw(st.booleans()):  # a header that is not quite JSON
        head = head[: draw(st.integers(0, len(head)))]
    raw = draw(st.binary(max_size=4096))
    declared = str(len(head)) if draw(st.integers(0, 9)) else draw(st.sampled_from(["-1", "0", "x", "99999999"]))
    headers = {"Inference-Header-Content-Length": declared, "Content-Type": "application/octet-stream"}
    return model, head + raw, headers


def test_binary_bodies_with_a_fuzzed_header_get_a_clear_error_never_a_5xx(stack: Stack) -> None:
    base = stack.info.gateway
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=base, timeout=30) as client:

        @given(request=_binary_request())
        @settings(max_examples=CASES * 8, deadline=None, database=None, derandomize=True)
        def fuzz(request: tuple[str, bytes, dict[str, str]]) -> None:
            model, body, headers = request
            response = client.post(f"/v2/models/{model}/infer", content=body, headers=headers)
            statuses[response.status_code] += 1
            assert response.status_code < 500, (response.status_code, response.text[:300])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert isinstance(error, str)
                assert error  # says what was wrong
            else:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith(("application/json", "application/octet-stream"))

        fuzz()
    assert statuses[400] > 0
    assert statuses[200] > 0  # the well-formed ones were answered
    print(f"binary fuzz: {sum(statuses.values())} requests, statuses {dict(statuses)}")
    assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 200
