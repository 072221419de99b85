"""Circuit breaker (open, half-open probe, close) and per-backend concurrency shedding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gateway import Settings
from gateway.backends import CircuitBreaker, Guard
from gateway.errors import BackendTimeoutError, BackendUnavailableError, BadBackendResponseError, CircuitOpenError

from .conftest import Fake, gateway, instances

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _guard(clock: Clock, failures: int = 3) -> Guard:
    return Guard(
        "torch", max_in_flight=10, breaker=CircuitBreaker(failures, cooldown_s=2.0, clock=clock), retry_after_s=1
    )


async def _refuse() -> None:
    raise BackendUnavailableError("refused", "torch")


async def _ok() -> str:
    return "ok"


async def test_breaker_opens_probes_and_closes() -> None:
    clock = Clock()
    guard = _guard(clock)
    for _ in range(3):
        with pytest.raises(BackendUnavailableError):
            await guard.run(_refuse)
    assert guard.breaker.state == "open"
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(CircuitOpenError) as info:
        await guard.run(counted)
    assert calls == 0  # not even tried
    assert info.value.headers() == {"X-Backend": "torch", "Retry-After": "2"}
    clock.now += 2.0
    assert guard.breaker.state == "half_open"
    with pytest.raises(BackendUnavailableError):  # the probe fails: open again for a full cooldown
        await guard.run(_refuse)
    assert guard.breaker.state == "open"
    clock.now += 1.0
    with pytest.raises(CircuitOpenError):
        await guard.run(counted)
    clock.now += 1.0
    assert await guard.run(counted) == "ok"  # the probe succeeds: closed
    assert guard.breaker.state == "closed"
    assert await guard.run(counted) == "ok"
    assert calls == 2


async def test_only_one_probe_while_half_open() -> None:
    clock = Clock()
    guard = _guard(clock, failures=1)
    with pytest.raises(BackendUnavailableError):
        await guard.run(_refuse)
    clock.now += 5
    gate = asyncio.Event()

    async def slow_probe() -> str:
        await gate.wait()
        return "ok"

    probe = asyncio.create_task(guard.run(slow_probe))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await guard.run(_ok)
    gate.set()
    assert await probe == "ok"
    assert await guard.run(_ok) == "ok"


async def test_answers_reset_the_count_and_timeouts_count() -> None:
    clock = Clock()
    guard = _guard(clock, failures=2)

    async def bad_answer() -> None:
        raise BadBackendResponseError("garbage", "torch")

    async def timeout() -> None:
        raise BackendTimeoutError("slow", "torch")

    with pytest.raises(BackendUnavailableError):
        await guard.run(_refuse)
    with pytest.raises(BadBackendResponseError):
        await guard.run(bad_answer)  # it answered: reachable
    with pytest.raises(BackendUnavailableError):
        await guard.run(_refuse)
    assert guard.breaker.state == "closed"
    with pytest.raises(BackendTimeoutError):
        await guard.run(timeout)
    assert guard.breaker.state == "open"


async def test_breaker_through_the_app_stops_calling_a_dead_backend(settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(None, breaker_failures=2, breaker_cooldown_s=30)) as (client, plane):
        statuses = []
        for _ in range(4):
            resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
            statuses.append((resp.status_code, resp.json()["detail"]))
        models = (await client.get("/v1/models")).json()
    assert [s for s, _ in statuses] == [503, 503, 503, 503]
    assert "unreachable" in statuses[1][1]
    assert "circuit open" in statuses[2][1]
    assert plane.stats.snapshot()["models"]["mlp"]["torch"]["since_reset"]["errors"] == {
        "unavailable": 2,
        "circuit_open": 2,
    }
    assert models["backends"]["torch"]["circuit"] == "open"


async def test_concurrency_limit_sheds_with_503(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    fake.modes["torch"] = "hang"
    async with gateway(settings_for(fake, max_concurrency=2)) as (client, plane):
        body = {"instances": instances("mlp", 1)}
        held = [asyncio.create_task(client.post("/v1/models/mlp/predict", json=body)) for _ in range(2)]
        while plane.guards["torch"].in_flight < 2:
            await asyncio.sleep(0.01)
        shed = await client.post("/v1/models/mlp/predict", json=body)
        other = await client.post("/v1/models/mlp/predict", json={**body, "backend": "tf"})
        metrics = (await client.get("/metrics")).text
        fake.release.set()
        done = await asyncio.gather(*held)
    assert shed.status_code == 503
    assert shed.headers["Retry-After"] == "1"
    assert "2 requests in flight (limit 2)" in shed.json()["detail"]
    assert other.status_code == 200  # the limit is per backend
    assert [r.status_code for r in done] == [200, 200]
    assert 'gateway_backend_in_flight{backend="torch"} 2.0' in metrics
    assert 'gateway_requests_total{backend="torch",model="mlp",outcome="overloaded"} 1.0' in metrics
