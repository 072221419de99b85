"""Circuit breaker (open, readiness probe, close), the adaptive in-flight limit, and shedding."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway import Settings
from gateway.backends import AimdLimit, CircuitBreaker, Guard
from gateway.errors import (
    BackendCutOffError,
    BackendOverloadedError,
    BackendTimeoutError,
    BackendUnavailableError,
    BadBackendResponseError,
    CircuitOpenError,
)

from .conftest import Fake, gateway, instances

pytestmark = pytest.mark.anyio


def _guard(failures: int = 3, probe: Callable[[], Awaitable[bool]] | None = None, **kw: float) -> Guard:
    breaker = CircuitBreaker(failures, cooldown_s=kw.pop("cooldown_s", 0.01), probe=probe, probe_timeout_s=0.05)
    return Guard("torch", AimdLimit(10, 10), breaker, retry_after_s=1)


async def _refuse() -> None:
    raise BackendUnavailableError("refused", "torch")


async def _ok() -> str:
    return "ok"


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(500):  # bounded: 5 s
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_breaker_opens_and_only_a_readiness_probe_closes_it() -> None:
    answers = [False, False, True]
    asked: list[bool] = []

    async def ready() -> bool:
        asked.append(answers[len(asked)])
        return asked[-1]

    guard = _guard(probe=ready)
    for _ in range(3):
        with pytest.raises(BackendUnavailableError):
            await guard.run(_refuse)
    assert guard.breaker.state in ("open", "half_open")
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(CircuitOpenError) as info:
        await guard.run(counted)
    assert calls == 0  # not even tried: no live request is ever the probe
    assert info.value.headers() == {"X-Backend": "torch", "Retry-After": "1"}
    await _until(lambda: guard.breaker.state == "closed")
    assert asked == [False, False, True]  # not ready twice (open again each time), then ready: closed
    assert await guard.run(counted) == "ok"
    assert calls == 1


async def test_a_probe_that_does_not_answer_in_time_keeps_it_open() -> None:
    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    guard = _guard(failures=1, probe=hangs)
    with pytest.raises(BackendUnavailableError):
        await guard.run(_refuse)
    await _until(lambda: guard.breaker.probes >= 2)  # each probe timed out (probe_timeout_s) and re-opened it
    assert guard.breaker.state != "closed"
    with pytest.raises(CircuitOpenError):
        await guard.run(_ok)
    await guard.breaker.aclose()


async def test_answers_reset_the_count_and_timeouts_and_cut_offs_count() -> None:
    guard = _guard(failures=2, cooldown_s=60)

    async def bad_answer() -> None:
        raise BadBackendResponseError("garbage", "torch")

    async def timeout() -> None:
        raise BackendTimeoutError("slow", "torch")

    async def cut_off() -> None:
        raise BackendCutOffError("broke off", "torch")

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
    guard.breaker.close()
    with pytest.raises(BackendCutOffError):
        await guard.run(cut_off)
    with pytest.raises(BackendCutOffError):
        await guard.run(cut_off)
    assert guard.breaker.state == "open"


def test_aimd_limit_grows_while_busy_and_backs_off_on_drops() -> None:
    limit = AimdLimit(4, 8, backoff=0.5, slow_s=1.0)
    assert limit.limit == 4
    limit.success(0.01, in_flight=1)  # not busy: no growth
    assert limit.limit == 4
    for _ in range(10):
        limit.success(0.01, in_flight=4)  # at least half the limit in use
    assert limit.limit == 8  # bounded by the maximum
    limit.drop()
    assert limit.limit == 4
    limit.drop()
    assert limit.limit == 4  # bounded by the minimum
    limit.success(0.01, in_flight=4)
    limit.success(2.0, in_flight=4)  # slower than slow_s: a drop
    assert limit.limit == 4


async def test_the_guard_feeds_its_limit() -> None:
    guard = Guard("torch", AimdLimit(2, 100), CircuitBreaker(5, 60.0), retry_after_s=1)

    async def busy() -> str:
        return "ok"

    guard.in_flight = 1  # one more in flight elsewhere: the limit is in use
    for _ in range(5):
        await guard.run(busy)
    assert guard.max_in_flight == 5  # 2 -> 5: grows while at least half of it is in use (2 of 2, 3, 4)

    async def overloaded() -> None:
        raise BackendOverloadedError("busy", "torch")

    with pytest.raises(BackendOverloadedError):
        await guard.run(overloaded)
    assert guard.max_in_flight == 4  # x 0.9


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
        other = await client.post("/v1/models/mlp/predict", json=body, headers={"X-Backend": "tf"})
        # admission happens before the body is read: it knows X-Backend and the policy, not the body's "backend"
        body_pinned = await client.post("/v1/models/mlp/predict", json={**body, "backend": "tf"})
        metrics = (await client.get("/metrics")).text
        fake.release.set()
        done = await asyncio.gather(*held)
    assert shed.status_code == 503
    assert shed.headers["Retry-After"] == "1"
    assert "2 requests in flight (limit 2)" in shed.json()["detail"]
    assert other.status_code == 200  # the limit is per backend
    assert body_pinned.status_code == 503
    assert [r.status_code for r in done] == [200, 200]
    assert 'gateway_backend_in_flight{backend="torch"} 2.0' in metrics
    assert 'gateway_requests_total{backend="torch",model="mlp",outcome="overloaded"} 2.0' in metrics
