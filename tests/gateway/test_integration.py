"""The gateway in front of the real TorchServe and TF server (started by ``python -m stack``)."""

from __future__ import annotations

import functools
import time
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from contract.artifacts import default_root
from contract.manifest import read_manifest
from services.torch_api.train import load_model
from stack.builtins import BUILTIN_NAMES, BUILTINS
from tests.utils.inputs import random_batch
from tests.utils.stack import Stack, post_json

pytestmark = pytest.mark.slow
BACKENDS = ("torch", "torch_ort", "tf")
TOLERANCE = 1e-4


@functools.cache
def _eager(name: str) -> torch.nn.Module:
    return load_model(name, read_manifest(default_root()).verify(default_root(), name, "weights"))


def _expected(name: str, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return _eager(name)(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("model", BUILTIN_NAMES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_on_each_backend_equals_the_in_process_model(stack: Stack, model: str, backend: str) -> None:
    n = 1 if model == "resnet" else 8
    x = random_batch(model, n, seed=7)
    response = post_json(stack, f"/v1/models/{model}/predict", {"instances": x.tolist()}, **{"X-Backend": backend})
    assert response.status_code == 200, f"{response.text}\n{stack.tails()}"
    body = response.json()
    assert body["backend"] == backend
    assert response.headers["X-Backend"] == backend
    timing = dict(part.strip().split(";dur=") for part in response.headers["Server-Timing"].split(","))
    assert set(timing) == {"backend", "gateway"}
    predictions = np.asarray(body["predictions"], dtype=np.float32)
    assert predictions.shape == (n, *BUILTINS[model].outputs[0].shape)
    assert float(np.abs(predictions - _expected(model, x)).max()) <= TOLERANCE


@pytest.mark.parametrize("model", ["mlp", "digits"])
def test_compare_agrees_across_all_three_runtimes(stack: Stack, model: str) -> None:
    x = random_batch(model, 16, seed=3)
    response = post_json(stack, f"/v1/models/{model}/compare", {"instances": x.tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(r["backend"] for r in body["results"]) == sorted(BACKENDS)
    assert body["max_abs_diff"] <= TOLERANCE
    assert body["argmax_agreement"] == 1.0
    tf_result = next(r for r in body["results"] if r["backend"] == "tf")
    assert tf_result["server"] == "duoserve-compat"
    for result in body["results"]:
        assert result["latency_ms"] > 0
        np.testing.assert_allclose(result["predictions"], _expected(model, x), atol=TOLERANCE)


def test_gateway_refuses_bad_input_before_any_backend(stack: Stack) -> None:
    before = httpx.get(f"{stack.info.gateway}/v1/stats").json()
    response = post_json(stack, "/v1/models/digits/predict", {"instances": [[1.0, 2.0]]})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("instance 0 has shape [2]; model digits expects")
    after = httpx.get(f"{stack.info.gateway}/v1/stats").json()
    assert _count(after, "digits") == _count(before, "digits")


def _count(stats: dict[str, Any], model: str) -> int:
    return sum(b["since_reset"]["count"] for b in stats["models"].get(model, {}).values())


def test_killed_backend_gives_503_then_recovers(stack: Stack) -> None:
    x = random_batch("mlp", 2)
    body = {"instances": x.tolist()}
    from stack.native import StackPaths, stop_service

    paths = StackPaths(stack.run_dir, stack.log_dir)
    stop_service(paths, "tf_api")
    response = post_json(stack, "/v1/models/mlp/predict", body, **{"X-Backend": "tf"})
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert "tf" in response.json()["detail"]
    # the other backends keep serving
    assert post_json(stack, "/v1/models/mlp/predict", body, **{"X-Backend": "torch"}).status_code == 200
    restarted = stack.command("restart", "tf_api")
    assert restarted.returncode == 0, f"{restarted.stdout}\n{restarted.stderr}\n{stack.tails()}"
    deadline = time.monotonic() + 30  # the circuit breaker's cooldown lets a probe through
    status = 0
    while time.monotonic() < deadline:
        response = post_json(stack, "/v1/models/mlp/predict", body, **{"X-Backend": "tf"})
        status = response.status_code
        if status == 200:
            break
        time.sleep(0.5)
    assert status == 200
    np.testing.assert_allclose(response.json()["predictions"], _expected("mlp", x), atol=TOLERANCE)
