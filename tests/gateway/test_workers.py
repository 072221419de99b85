"""Several gateway workers (GATEWAY_WORKERS=2, SO_REUSEPORT): /v1/stats and /metrics stay exact across them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from services.process import http_probe
from tests.utils.servers import free_port, running

from .conftest import Fake

pytestmark = pytest.mark.anyio
REQUESTS = 40


def _metric(text: str, line: str) -> float:
    found = [float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line + " ")]
    return found[0] if found else 0.0


async def test_stats_and_metrics_are_the_sum_over_workers(fake: Fake, manifest_path: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "GATEWAY_WORKERS": "2",
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRPC_PORT": "0",
        "GATEWAY_MANIFEST": str(manifest_path),
        "GATEWAY_TORCH_URL": fake.url,
        "GATEWAY_TF_URL": fake.url,
        "GATEWAY_LOG_LEVEL": "warning",
    }
    url = f"http://127.0.0.1:{port}"
    with running("gateway", ["-m", "gateway"], tmp_path / "gateway.log", env=env) as proc:
        proc.wait_ready(http_probe(f"{url}/health/live"), timeout_s=60)
        body = {"instances": [[0.1] * 10]}
        for _ in range(REQUESTS):  # a fresh connection each: the kernel spreads them over the workers
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.post("/v1/models/mlp/predict", json=body)).status_code == 200
        async with httpx.AsyncClient(base_url=url) as client:
            stats = (await client.get("/v1/stats")).json()
            metrics = (await client.get("/metrics")).text
            assert (await client.post("/v1/stats/reset")).status_code == 200
            after = (await client.get("/v1/stats")).json()
    workers = stats["workers"]
    assert [w["index"] for w in workers] == [0, 1], json.dumps(stats)[:400]
    assert stats["workers_missing"] == []
    assert sum(w["answered"] for w in workers) == REQUESTS
    assert all(w["answered"] > 0 for w in workers)  # both served some: the sum is over two real workers
    assert stats["models"]["mlp"]["torch"]["since_reset"]["count"] == REQUESTS
    assert stats["models"]["mlp"]["torch"]["window"]["count"] == REQUESTS
    assert _metric(metrics, 'gateway_requests_total{backend="torch",model="mlp",outcome="ok"}') == REQUESTS
    assert _metric(metrics, 'gateway_request_duration_seconds_count{backend="torch",model="mlp",outcome="ok"}') == (
        REQUESTS
    )
    assert after["models"] == {}
    assert sum(w["answered"] for w in after["workers"]) == 0
