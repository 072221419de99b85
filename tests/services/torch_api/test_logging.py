"""TorchServe's production logging on the real server: no line per request, every file bounded, where it logs."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.services.torch_api.conftest import TorchServe
from tests.utils.servers import listening

REQUESTS = 300


def _bytes(log_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(log_dir.iterdir()) if p.is_file()}


def test_requests_add_no_log_lines(torchserve: TorchServe) -> None:
    body = {"instances": [[0.5] * 10]}
    with httpx.Client(base_url=torchserve.url, headers=torchserve.auth(), timeout=30) as client:
        assert client.post("/predictions/mlp", json=body).status_code == 200
        time.sleep(1.0)  # TorchServe logs asynchronously
        before = _bytes(torchserve.log_dir)
        for _ in range(REQUESTS):
            assert client.post("/predictions/mlp", json=body).status_code == 200
    time.sleep(1.0)
    after = _bytes(torchserve.log_dir)
    grown = {name: size - before.get(name, 0) for name, size in after.items() if size != before.get(name, 0)}
    # TorchServe's own logging wrote 4,377 bytes a request (docs/benchmarks.md); the production logging none
    assert sum(grown.values()) == 0, grown
    assert "access_log.log" not in after or after["access_log.log"] == 0
    # the launcher's copy of the console is there, bounded by services/logsink.py, and holds no INFO line
    stdout = (torchserve.log_dir / "stdout.log").read_text(errors="replace")
    assert "[INFO " not in stdout
    assert "[DEBUG" not in stdout


def test_the_workers_load_lines_are_kept_and_the_per_batch_line_is_not(torchserve: TorchServe) -> None:
    log = (torchserve.log_dir / "model_log.log").read_text()
    assert "duoserve: mlp loaded with torchscript on cpu" in log
    assert "Backend received inference at" not in log


def test_torchserve_listens_on_loopback_only(torchserve: TorchServe) -> None:
    bound = listening([torchserve.proc.pid])
    assert bound, "no listening socket found"
    assert {address for _, _, address, _ in bound} == {"127.0.0.1"}, bound
    ports = {port for *_, port in bound}
    assert {torchserve.inference, torchserve.management, torchserve.metrics} <= ports
