"""Backend clients: TorchServe token refresh, the configured limits reaching the client, readiness."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp
import pytest

from gateway import Settings
from gateway.backends.h1 import H1Transport
from gateway.backends.tf_rest import TFRestClient
from gateway.backends.torchserve import TorchServeClient
from gateway.backends.transport import AiohttpTransport, HttpLimits, HttpxTransport

from .conftest import Fake, gateway, instances, outputs

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("refusal", [400, 401])
async def test_token_is_read_and_refreshed_once_when_torchserve_rotates_it(
    fake: Fake, settings_for: Callable[..., Settings], refusal: int
) -> None:
    fake.refusal_status = refusal
    fake.rotate_key("key-1")
    async with gateway(settings_for(fake, torch_key_file=fake.key_file)) as (client, _):
        body = {"instances": instances("mlp", 1)}
        first = await client.post("/v1/models/mlp/predict", json=body)
        fake.rotate_key("key-2")  # TorchServe restarted: new key, old one refused
        second = await client.post("/v1/models/mlp/predict", json=body)
        third = await client.post("/v1/models/mlp/predict", json=body)
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    seen = [(who, headers.get("Authorization")) for who, _, headers in fake.requests]
    assert seen == [
        ("torch", "Bearer key-1"),
        ("auth_refused", "Bearer key-1"),
        ("torch", "Bearer key-2"),
        ("torch", "Bearer key-2"),  # cached: the file is read again only after a refusal
    ]


async def test_a_refused_fresh_token_is_a_502_not_the_callers_fault(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    fake.rotate_key("real")
    assert fake.key_file is not None
    fake.key_file.write_text(json.dumps({"inference": {"key": "stale"}}))
    async with gateway(settings_for(fake, torch_key_file=fake.key_file)) as (client, _):
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 1)})
    assert resp.status_code == 502
    assert "refused the gateway's inference key" in resp.json()["detail"]
    assert "stale" not in resp.text  # the key itself is never shown
    assert [who for who, _, _ in fake.requests] == ["auth_refused", "auth_refused"]


async def test_configured_timeouts_and_pool_limits_reach_the_h1_client(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(None, connect_timeout_s=0.75, read_timeout_s=7.5, pool_size=13)
    async with gateway(settings) as (_, plane):
        for name in ("torch", "torch_ort", "tf"):
            client = plane.clients[name]
            assert isinstance(client, TorchServeClient | TFRestClient)
            transport = client.transport
            assert isinstance(transport, H1Transport)
            assert transport.limits == HttpLimits(
                connect_timeout_s=0.75, read_timeout_s=7.5, pool_size=13, retry_after_s=1
            )
            assert transport.slots._value == 13


async def test_h1_pool_limit_bounds_open_connections(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    fake.modes["torch"] = "hang"
    async with gateway(settings_for(fake, pool_size=1)) as (client, _plane):
        body = {"instances": instances("mlp", 1)}
        calls = [asyncio.create_task(client.post("/v1/models/mlp/predict", json=body)) for _ in range(3)]
        await asyncio.wait_for(fake.started.wait(), 5)
        await asyncio.sleep(0.1)
        assert len(fake.requests) == 1  # the other two wait for the one pooled connection
        fake.release.set()
        done = await asyncio.gather(*calls)
    assert [r.status_code for r in done] == [200, 200, 200]
    assert len(fake.requests) == 3


async def test_configured_timeouts_and_pool_limits_reach_the_aiohttp_client(
    settings_for: Callable[..., Settings],
) -> None:
    settings = settings_for(None, http_client="aiohttp", connect_timeout_s=0.75, read_timeout_s=7.5, pool_size=13)
    async with gateway(settings) as (_, plane):
        for name in ("torch", "torch_ort", "tf"):
            client = plane.clients[name]
            assert isinstance(client, TorchServeClient | TFRestClient)
            transport = client.transport
            assert isinstance(transport, AiohttpTransport)
            session = transport.session
            assert session.timeout == aiohttp.ClientTimeout(total=None, connect=0.75, sock_read=7.5)
            connector = session.connector
            assert isinstance(connector, aiohttp.TCPConnector)
            assert connector.limit == 13
            assert connector.limit_per_host == 13
        limiter = plane.guards["tf"].limiter
        assert (limiter.minimum, limiter.maximum) == (settings.min_concurrency, settings.max_concurrency)
        assert limiter.slow_s == settings.slow_call_s
        assert plane.guards["tf"].breaker.probe_timeout_s == settings.probe_timeout_s
        assert (plane.retry_budget.share, plane.retry_budget.window_s) == (0.2, 10.0)
        assert plane.guards["tf"].breaker.threshold == settings.breaker_failures
        sessions = [plane.clients[n].transport.session for n in ("torch", "tf")]  # type: ignore[attr-defined]
    assert all(s.closed for s in sessions)  # the lifespan closed the pools


async def test_httpx_alternative_gets_the_same_limits_and_works(
    fake: Fake, settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(fake, http_client="httpx", connect_timeout_s=0.5, read_timeout_s=3.0, pool_size=7)
    async with gateway(settings) as (client, plane):
        transport = plane.clients["tf"].transport
        assert isinstance(transport, HttpxTransport)
        timeout = transport.client.timeout
        assert (timeout.connect, timeout.read) == (0.5, 3.0)
        pool = transport.client._transport._pool  # type: ignore[attr-defined]
        assert pool._max_connections == 7
        resp = await client.post("/v1/models/mlp/predict", json={"instances": instances("mlp", 2), "backend": "tf"})
    assert resp.status_code == 200
    assert len(resp.json()["predictions"]) == 2


async def test_models_and_readiness(fake: Fake, settings_for: Callable[..., Settings]) -> None:
    policies = {"digits": {"policy": "fastest", "shadow": {"backend": "tf", "share": 0.1}}}
    async with gateway(settings_for(fake, policies=policies)) as (client, _):
        models = (await client.get("/v1/models")).json()
        ready = await client.get("/health/ready")
        fake.modes["tf_status"] = "loading"
        tf_loading = (await client.get("/v1/models")).json()
    digits = models["models"]["digits"]
    assert digits["inputs"] == [{"name": "x", "dtype": "float32", "shape": [8, 8], "value_range": [0.0, 1.0]}]
    assert digits["outputs"] == [{"name": "probabilities", "dtype": "float32", "shape": [10]}]
    assert digits["max_batch"] == 4
    assert digits["policy"]["policy"] == "fastest"
    assert digits["shadow"] == {"backend": "tf", "share": 0.1}
    assert {b: v["ready"] for b, v in digits["backends"].items()} == {"torch": True, "torch_ort": True, "tf": True}
    assert digits["backends"]["tf"]["server"] == "duoserve-compat"
    assert models["backends"]["torch_ort"]["path"] == "/predictions/{model}_ort"
    assert models["backends"]["tf"]["circuit"] == "closed"
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert tf_loading["models"]["mlp"]["backends"]["tf"]["ready"] is False


async def test_not_ready_when_backends_are_down(settings_for: Callable[..., Settings]) -> None:
    async with gateway(settings_for(None)) as (client, _):
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 503
    body = ready.json()
    assert body["detail"] == "some model has no ready backend"
    assert body["models"]["mlp"] == {"torch": False, "torch_ort": False, "tf": False}


async def test_h1_reads_an_answer_that_ends_with_the_connection(settings_for: Callable[..., Settings]) -> None:
    rows = instances("mlp", 2)
    body = json.dumps({"predictions": outputs("mlp", rows)}).encode()

    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http10, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with gateway(settings_for(None, torch_url=f"http://127.0.0.1:{port}")) as (client, _):
            answers = [await client.post("/v1/models/mlp/predict", json={"instances": rows}) for _ in range(2)]
    finally:
        server.close()
        await server.wait_closed()
    assert [r.status_code for r in answers] == [200, 200], answers[0].text
    assert answers[1].json()["predictions"] == outputs("mlp", rows)


@pytest.mark.parametrize("mode", ["chunked", "close"])
async def test_h1_reads_chunked_and_connection_close_answers(
    fake: Fake, settings_for: Callable[..., Settings], mode: str
) -> None:
    fake.modes["torch"] = mode
    rows = instances("digits", 2)
    async with gateway(settings_for(fake)) as (client, _):
        answers = [await client.post("/v1/models/digits/predict", json={"instances": rows}) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200], answers[0].text
    assert all(r.json()["predictions"] == outputs("digits", rows) for r in answers)
