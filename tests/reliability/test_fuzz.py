"""schemathesis against the gateway's own OpenAPI schema, on the real stack (bounded case count).

Every response must be a non-5xx that conforms to the schema (status code declared, content
type, body shape, headers); valid and invalid inputs both. The longer run (>= 1,000 cases)
is the CLI command in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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
    assert len(operations) == 8

    variants = [(op, None) for op in operations] + [(op, "digits") for op in operations if "{model}" in op.path]
    for operation, model in variants:
        fixed = {"model": model} if model else None

        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
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

        try:
            fuzz()
        except Unsatisfiable:
            # nothing to negate in an operation without parameters or body (GET /v1/models, ...)
            assert mode is GenerationMode.NEGATIVE
            assert not operation.body
            assert not operation.path_parameters
            skipped.append(operation.label)

    assert sum(statuses.values()) >= len(operations)
    assert not [s for s in statuses if s >= 500], statuses
    print(f"schemathesis {mode.value}: {sum(statuses.values())} cases, statuses {dict(statuses)}, none: {skipped}")
    pids = json.loads((Path(stack.run_dir) / "stack.pids.json").read_text())  # current: other tests restart some
    for service in SERVICES:
        assert _alive(pids[service]), f"{service} died\n{stack.tails()}"
    assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 200
