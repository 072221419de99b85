"""Agreement math on known vectors, and /compare through the app."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from gateway import Settings
from gateway.compare import agreement, classes

from .conftest import Fake, gateway, instances, outputs


def test_argmax_agreement_and_max_abs_diff() -> None:
    a = np.array([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    b = np.array([[0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5]])
    c = np.array([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3], [0.5, 0.5]])
    result = agreement({"torch": {"y": a}, "tf": {"y": b}, "torch_ort": {"y": c}})
    assert result["max_abs_diff"] == pytest.approx(0.5)
    # rows 0 and 3 agree everywhere; row 1 (b differs) and row 2 (c differs) do not
    assert result["argmax_agreement"] == pytest.approx(0.5)
    pairs = {tuple(p["backends"]): p for p in result["pairs"]}
    assert pairs[("torch", "tf")]["argmax_agreement"] == pytest.approx(0.75)
    assert pairs[("torch", "tf")]["max_abs_diff"] == pytest.approx(0.5)
    assert pairs[("torch", "torch_ort")]["max_abs_diff"] == pytest.approx(0.3)


def test_single_output_uses_the_half_threshold() -> None:
    assert classes(np.array([[0.49], [0.5], [0.99]])).tolist() == [0, 1, 1]
    result = agreement({"a": {"y": np.array([[0.49], [0.7]])}, "b": {"y": np.array([[0.51], [0.8]])}})
    assert result["argmax_agreement"] == pytest.approx(0.5)
    assert result["max_abs_diff"] == pytest.approx(0.1)


def test_fewer_than_two_outputs() -> None:
    assert agreement({"a": {"y": np.zeros((1, 2))}}) == {"max_abs_diff": None, "argmax_agreement": None, "pairs": []}


def test_several_outputs_count_in_the_difference_and_the_first_picks_the_class() -> None:
    a = {"logits": np.array([[0.0, 1.0]]), "pooled": np.array([[5.0, 5.0, 5.0]])}
    b = {"logits": np.array([[0.1, 1.0]]), "pooled": np.array([[5.0, 5.5, 5.0]])}
    result = agreement({"torch": a, "tf": b})
    assert result["max_abs_diff"] == pytest.approx(0.5)  # from pooled
    assert result["argmax_agreement"] == 1.0  # logits agree on class 1


@pytest.mark.anyio
async def test_compare_route_reports_each_backend_and_their_agreement(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    fake.offsets["tf"] = 0.01
    fake.modes["torch_ort"] = "500"
    rows = instances("digits", 3)
    async with gateway(settings_for(fake)) as (client, _):
        resp = await client.post("/v1/models/digits/compare", json={"instances": rows})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    by_backend = {r["backend"]: r for r in body["results"]}
    assert by_backend["torch"]["predictions"] == outputs("digits", rows)
    assert by_backend["tf"]["server"] == "duoserve-compat"
    assert by_backend["torch"]["latency_ms"] > 0
    assert by_backend["torch_ort"]["error"]["status"] == 502
    assert "boom" in by_backend["torch_ort"]["error"]["detail"]
    assert body["max_abs_diff"] == pytest.approx(0.01)
    assert body["argmax_agreement"] == 1.0


@pytest.mark.anyio
async def test_compare_with_every_backend_down_is_503(settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(None)) as (client, _):
        resp = await client.post("/v1/models/mlp/compare", json={"instances": instances("mlp", 1)})
    assert resp.status_code == 503
    assert "Retry-After" in resp.headers
