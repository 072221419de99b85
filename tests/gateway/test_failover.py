"""Lossless failover: a refused, reset or cut-off call is retried once on the policy's next backend, within
the retry budget; hedged requests; shedding before the body is read, answered with a lingering close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from gateway import Settings, create_app
from gateway.server import uvicorn_config
from gateway.workers import listening_socket
from tests.utils.servers import free_port

from .conftest import Fake, gateway, instances

pytestmark = pytest.mark.anyio
FAILOVER = {"mlp": {"policy": "failover", "order": ["torch", "tf"]}}
BODY = {"instances": [[0.1] * 10]}


def _metric(text: str, line: str) -> float:
    found = [float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line + " ")]
    return found[0] if found else 0.0


@pytest.mark.parametrize("mode", ["reset", "cut"])
async def test_a_reset_or_cut_off_call_is_retried_on_the_next_backend(
    mode: str, fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    fake.modes["torch"] = mode
    async with gateway(settings_for(fake, policies=FAILOVER)) as (client, _plane):
        resp = await client.post("/v1/models/mlp/predict", json=BODY)
        stats = (await client.get("/v1/stats")).json()
        metrics = (await client.get("/metrics")).text
    assert resp.status_code == 200, resp.text
    assert resp.json()["backend"] == "tf"
    assert [b for b, _, _ in fake.requests] == ["torch", "tf"]  # torch did get it, then tf answered
    kind = "unavailable" if mode == "reset" else "cut_off"
    assert stats["models"]["mlp"]["torch"]["since_reset"]["errors"] == {kind: 1}
    assert stats["events"]["mlp"]["retries"] == 1
    assert _metric(metrics, 'gateway_retries_total{backend="tf",model="mlp",outcome="ok"}') == 1.0


async def test_a_fixed_policy_or_a_pinned_backend_is_not_retried(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    fake.modes["torch"] = "cut"
    async with gateway(settings_for(fake, policies=FAILOVER)) as (client, _):
        pinned = await client.post("/v1/models/mlp/predict", json=BODY, headers={"X-Backend": "torch"})
    assert pinned.status_code == 502
    assert "broke off its answer" in pinned.json()["detail"]
    assert [b for b, _, _ in fake.requests] == ["torch"]


async def test_the_retry_budget_stops_retries(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    fake.modes["torch"] = "reset"
    settings = settings_for(fake, policies=FAILOVER, retry_budget=0.2, retry_budget_min=0, breaker_failures=100)
    async with gateway(settings) as (client, _):
        statuses = [(await client.post("/v1/models/mlp/predict", json=BODY)).status_code for _ in range(10)]
        stats = (await client.get("/v1/stats")).json()
        metrics = (await client.get("/metrics")).text
    # retries stay at or under 20 % of the requests seen: the 1st and the 6th request may retry
    assert statuses == [200, 503, 503, 503, 503, 200, 503, 503, 503, 503]
    assert stats["events"]["mlp"]["retries"] == 2
    assert stats["events"]["mlp"]["retries_denied"] == 8
    assert _metric(metrics, 'gateway_retries_total{backend="none",model="mlp",outcome="denied"}') == 8.0
    assert [b for b, _, _ in fake.requests].count("tf") == 2


async def test_failover_past_a_shed_backend_needs_no_budget(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    fake.modes["torch"] = "hang"
    settings = settings_for(fake, policies=FAILOVER, max_concurrency=1, retry_budget=0.0, retry_budget_min=0)
    async with gateway(settings) as (client, _plane):
        held = asyncio.create_task(client.post("/v1/models/mlp/predict", json=BODY))
        await fake.started.wait()
        moved = await client.post("/v1/models/mlp/predict", json=BODY)  # torch is full: never sent there
        fake.release.set()
        assert (await held).status_code == 200
    assert moved.status_code == 200
    assert moved.json()["backend"] == "tf"


async def test_a_hedge_wins_and_the_slow_call_is_cancelled_and_counted(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    fake.modes["torch"] = "hang"
    policies = {"mlp": {**FAILOVER["mlp"], "hedge": {"after": 50, "max_share": 0.5}}}
    async with gateway(settings_for(fake, policies=policies, read_timeout_s=1.0)) as (client, plane):
        won = await client.post("/v1/models/mlp/predict", json=BODY)
        assert plane.guards["torch"].in_flight == 0  # the losing torch call was cancelled, not left waiting
        # the second request finds max_share used up (1 hedge of 2 requests): no hedge, torch times out
        denied = await client.post("/v1/models/mlp/predict", json=BODY)
        stats = (await client.get("/v1/stats")).json()
        metrics = (await client.get("/metrics")).text
    assert won.status_code == 200
    assert won.json()["backend"] == "tf"
    assert denied.status_code == 504
    assert stats["events"]["mlp"] == {
        "retries": 0,
        "retries_denied": 0,
        "hedges": 1,
        "hedges_won": 1,
        "hedges_denied": 1,
        "cancelled": 1,
    }
    assert _metric(metrics, 'gateway_hedges_total{backend="tf",model="mlp",outcome="won"}') == 1.0
    assert _metric(metrics, 'gateway_hedges_total{backend="none",model="mlp",outcome="denied"}') == 1.0
    assert _metric(metrics, 'gateway_backend_cancelled_total{backend="torch",model="mlp"}') == 1.0


async def test_a_fast_first_backend_is_not_hedged(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    policies = {"mlp": {**FAILOVER["mlp"], "hedge": {"after": "p95", "max_share": 1.0}}}
    async with gateway(settings_for(fake, policies=policies)) as (client, _):
        for _ in range(3):  # the first has no live p95 yet; the others answer well within 30 s
            assert (await client.post("/v1/models/mlp/predict", json=BODY, timeout=30)).status_code == 200
        stats = (await client.get("/v1/stats")).json()
    assert [b for b, _, _ in fake.requests] == ["torch"] * 3
    assert stats["events"].get("mlp", {}).get("hedges", 0) == 0


@contextlib.asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[str]:
    """The app on a real uvicorn with the gateway's protocol (header timeout, lingering close)."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings))
    sock = listening_socket("127.0.0.1", settings.port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        await task


def _send_headers_and_some_body(port: int, length: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            f"POST /v1/models/mlp/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"instances": [[')  # the rest of the body never comes
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


async def test_a_shed_request_is_answered_before_its_body_is_read(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    fake.modes["torch"] = "hang"
    settings = settings_for(fake, port=free_port(), max_concurrency=1)
    async with _served(settings) as url, httpx.AsyncClient(base_url=url) as client:
        held = asyncio.create_task(client.post("/v1/models/mlp/predict", json=BODY))
        await fake.started.wait()
        answer = await asyncio.to_thread(_send_headers_and_some_body, settings.port, 10_000_000)
        fake.release.set()
        assert (await held).status_code == 200
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 503 Service Unavailable"
    assert b"retry-after: 1" in rest.lower()
    assert b"1 requests in flight (limit 1); shedding load" in rest


def _urllib_post(url: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_a_client_that_writes_its_whole_body_first_reads_the_413(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(fake, port=free_port(), max_body_bytes=1_000_000)
    body = json.dumps({"instances": instances("mlp", 1)}).encode() + b" " * 30_000_000  # urllib: Connection: close
    async with _served(settings) as url:
        status, answer = await asyncio.to_thread(_urllib_post, f"{url}/v1/models/mlp/predict", body)
    assert status == 413  # not "connection reset by peer": the gateway read and dropped the rest before closing
    assert answer["detail"] == f"request body of {len(body)} bytes exceeds the limit of 1000000 bytes"
