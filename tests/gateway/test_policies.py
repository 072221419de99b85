"""Routing policies: choice distributions with a seeded RNG, and failover/shadow through the app."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable

import pytest

from gateway import Settings
from gateway.config import PolicyConfig
from gateway.policies import Failover, Fastest, Fixed, Weighted, make_policy

from .conftest import Fake, gateway, instances

N = 20_000


def _shares(choose: Callable[[], list[str]], n: int = N) -> dict[str, float]:
    counts = Counter(choose()[0] for _ in range(n))
    return {k: v / n for k, v in counts.items()}


def test_fixed_always_the_same() -> None:
    assert _shares(Fixed("tf").choose, 100) == {"tf": 1.0}


def test_weighted_follows_the_weights() -> None:
    policy = Weighted({"torch": 3, "tf": 1, "torch_ort": 0}, random.Random(1))
    shares = _shares(policy.choose)
    assert set(shares) == {"torch", "tf"}
    assert shares["torch"] == pytest.approx(0.75, abs=0.015)
    assert shares["tf"] == pytest.approx(0.25, abs=0.015)


def test_fastest_prefers_the_fast_backend_but_keeps_probing_the_slow_one() -> None:
    policy = Fastest(["torch", "tf"], random.Random(2), alpha=0.5, probe_share=0.1)
    assert policy.choose() == ["torch", "tf"]  # unmeasured first; the other one for a retry or hedge
    policy.observe("torch", 0.010, ok=True)
    assert policy.choose() == ["tf", "torch"]
    policy.observe("tf", 0.002, ok=True)
    shares = _shares(policy.choose)
    # two backends: power-of-two always compares both, so only the probes reach torch (half of 10 %)
    assert shares["tf"] == pytest.approx(0.95, abs=0.01)
    assert shares["torch"] == pytest.approx(0.05, abs=0.01)


def test_fastest_penalises_failures_and_learns_back() -> None:
    policy = Fastest(["torch", "tf"], random.Random(3), alpha=0.5, probe_share=0.0)
    policy.observe("torch", 0.001, ok=True)
    policy.observe("tf", 0.005, ok=True)
    assert _shares(policy.choose, 100) == {"torch": 1.0}
    policy.observe("torch", 0.001, ok=False)  # counted as a 1 s penalty
    assert _shares(policy.choose, 100) == {"tf": 1.0}
    for _ in range(30):
        policy.observe("torch", 0.001, ok=True)
    assert _shares(policy.choose, 100) == {"torch": 1.0}


def test_fastest_with_three_backends_uses_two_random_choices() -> None:
    policy = Fastest(["torch", "torch_ort", "tf"], random.Random(4), probe_share=0.0)
    for name, latency in [("torch", 0.003), ("torch_ort", 0.002), ("tf", 0.001)]:
        policy.observe(name, latency, ok=True)
    shares = _shares(policy.choose)
    # the slowest is never the better of a pair; the middle one wins only when paired with the slowest
    assert "torch" not in shares
    assert shares["torch_ort"] == pytest.approx(1 / 3, abs=0.015)
    assert shares["tf"] == pytest.approx(2 / 3, abs=0.015)


def test_failover_order_and_factory() -> None:
    assert Failover(["tf", "torch"]).choose() == ["tf", "torch"]
    rng = random.Random(0)
    assert isinstance(make_policy(PolicyConfig(policy="fastest"), ["torch", "tf"], rng), Fastest)
    made = make_policy(PolicyConfig(policy="failover", order=["tf", "torch"]), ["torch", "tf"], rng)
    assert made.choose() == ["tf", "torch"]


async_test = pytest.mark.anyio


@async_test
async def test_weighted_through_the_app(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    policies = {"mlp": {"policy": "weighted", "weights": {"torch": 1, "tf": 1}}}
    async with gateway(settings_for(fake, policies=policies), seed=5) as (client, _):
        got = Counter()
        for _ in range(200):
            resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
            got[resp.headers["X-Backend"]] += 1
    assert set(got) == {"torch", "tf"}
    assert got["torch"] == pytest.approx(100, abs=25)


@async_test
@pytest.mark.parametrize("mode", ["reset", "503"])
async def test_failover_on_failures_before_an_answer(
    fake: Fake, settings_for: Callable[..., Settings], mode: str
) -> None:
    fake.modes["torch"] = mode
    policies = {"mlp": {"policy": "failover", "order": ["torch", "tf"]}}
    async with gateway(settings_for(fake, policies=policies)) as (client, plane):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
        stats = plane.stats.snapshot()
    assert resp.status_code == 200
    assert resp.headers["X-Backend"] == "tf"
    assert [r[0] for r in fake.requests] == ["torch", "tf"]
    assert stats["models"]["mlp"]["torch"]["since_reset"]["count"] == 0
    assert sum(stats["models"]["mlp"]["torch"]["since_reset"]["errors"].values()) == 1


@async_test
async def test_failover_when_the_first_backend_is_down(
    manifest_path: object, fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    from tests.utils.servers import free_port

    policies = {"mlp": {"policy": "failover", "order": ["torch", "tf"]}}
    settings = settings_for(fake, policies=policies, torch_url=f"http://127.0.0.1:{free_port()}")
    async with gateway(settings) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
    assert resp.status_code == 200
    assert resp.json()["backend"] == "tf"


@async_test
@pytest.mark.parametrize(("mode", "status"), [("400", 400), ("500", 502), ("not_json", 502)])
async def test_no_failover_after_an_answer(
    fake: Fake, settings_for: Callable[..., Settings], mode: str, status: int
) -> None:
    fake.modes["torch"] = mode
    policies = {"mlp": {"policy": "failover", "order": ["torch", "tf"]}}
    async with gateway(settings_for(fake, policies=policies)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
    assert resp.status_code == status
    assert [r[0] for r in fake.requests] == ["torch"]


@async_test
async def test_shadow_answers_first_then_records_the_difference(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    fake.modes["tf"] = "hang"
    fake.offsets["tf"] = 0.125
    policies = {"mlp": {"policy": "fixed", "backend": "torch", "shadow": {"backend": "tf", "share": 1.0}}}
    rows = instances("mlp", 2)
    async with gateway(settings_for(fake, policies=policies)) as (client, plane):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": rows})
        # the caller has its answer while the shadow backend is still holding the mirrored request
        assert resp.status_code == 200
        assert resp.json()["backend"] == "torch"
        await asyncio.wait_for(fake.started.wait(), 5)
        assert not fake.release.is_set()
        assert len(plane.shadow.tasks) == 1
        fake.release.set()
        await plane.shadow.idle()
        snap = plane.stats.snapshot()
        metrics = (await client.get("/metrics")).text
    (shadow,) = snap["shadow"]
    assert (shadow["model"], shadow["primary"], shadow["shadow"]) == ("mlp", "torch", "tf")
    assert shadow["max_abs_diff"] == pytest.approx(0.125)
    assert shadow["since_reset"]["count"] == 1
    assert snap["models"]["mlp"]["torch"]["since_reset"]["count"] == 1
    assert "tf" not in snap["models"]["mlp"]  # shadow traffic is kept apart from served traffic
    assert 'gateway_shadow_max_abs_diff_count{model="mlp",primary="torch",shadow="tf"} 1.0' in metrics


@async_test
async def test_shadow_is_sampled_and_bounded(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    fake.modes["tf"] = "hang"
    policies = {"mlp": {"policy": "fixed", "backend": "torch", "shadow": {"backend": "tf", "share": 1.0}}}
    async with gateway(settings_for(fake, policies=policies, shadow_max_concurrency=2)) as (client, plane):
        for _ in range(5):
            resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
            assert resp.status_code == 200
        assert len(plane.shadow.tasks) == 2
        assert plane.shadow.dropped == 3
        fake.release.set()
        await plane.shadow.idle()
    sampled = {"mlp": {"policy": "fixed", "backend": "torch", "shadow": {"backend": "tf", "share": 0.25}}}
    async with gateway(settings_for(fake, policies=sampled), seed=7) as (client, plane):
        for _ in range(200):
            await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
        await plane.shadow.idle()
        count = plane.stats.snapshot()["shadow"][0]["since_reset"]["count"]
    assert count == pytest.approx(50, abs=15)
