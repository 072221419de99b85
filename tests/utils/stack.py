"""The whole native stack (TorchServe, TF server, gateway) for integration tests, on free ports.

The stack on free ports is the project's own (:mod:`stack.scratch`, which the zoo runner uses too);
the tests' stacks keep TorchServe's access log on, which the tests read to see what reached it
(it is off in production and in every run and benchmark).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from stack import scratch
from stack.scratch import SERVICES, Stack

__all__ = ["SERVICES", "Stack", "post_json", "running_stack"]


@contextmanager
def running_stack(
    base: Path,
    torch_models: str = "all",
    artifacts: Path | None = None,
    env: dict[str, str] | None = None,
    triton_models: str = "none",
) -> Iterator[Stack]:
    """:func:`stack.scratch.running_stack` with TorchServe's access log on."""
    with scratch.running_stack(
        base, torch_models, artifacts, env={"TORCH_API_ACCESS_LOG": "true", **(env or {})}, triton_models=triton_models
    ) as stack:
        yield stack


def post_json(stack: Stack, path: str, body: Any, **headers: str) -> httpx.Response:
    """POST ``body`` as JSON to the stack's gateway at ``path``, with ``headers``."""
    return httpx.post(
        f"{stack.info.gateway}{path}",
        content=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
        timeout=120,
    )
