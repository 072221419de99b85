"""The launcher renews TorchServe's inference key before it expires; clients re-read the key file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from contract.artifacts import default_root
from contract.keys import KEY_FILE, read_key
from services.torch_api.launcher import READY_LINE
from tests.utils.servers import free_port, running, torchserve_worker_port

pytestmark = pytest.mark.slow


def _inference_key(run_dir: Path) -> str:
    return read_key(run_dir / KEY_FILE)


def test_inference_key_is_renewed_and_the_old_one_refused(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "TORCH_API_INFERENCE_PORT": str(port),
        "TORCH_API_MANAGEMENT_PORT": str(free_port()),
        "TORCH_API_METRICS_PORT": str(free_port()),
        "TORCH_API_GRPC_INFERENCE_PORT": str(free_port()),
        "TORCH_API_GRPC_MANAGEMENT_PORT": str(free_port()),
        "TORCH_API_WORKER_PORT": str(torchserve_worker_port()),
        "TORCH_API_MODELS": "mlp",
        "TORCH_API_KEY_RENEW_S": "2",
        "TORCH_API_RUN_DIR": str(tmp_path / "run"),
        "TORCH_API_LOG_DIR": str(tmp_path / "logs"),
        "TORCH_API_ARTIFACTS": str(default_root()),
    }
    body = json.dumps({"instances": [[0.5] * 10]})
    url = f"http://127.0.0.1:{port}/predictions/mlp"
    with running("torchserve-keys", ["-m", "services.torch_api", "serve"], tmp_path / "launcher.log", env) as proc:
        proc.wait_ready(line=READY_LINE, timeout_s=240)
        first = _inference_key(tmp_path / "run")
        proc.wait_ready(lambda: _inference_key(tmp_path / "run") != first, timeout_s=30)
        second = _inference_key(tmp_path / "run")
        time.sleep(0.2)
        old = httpx.post(url, content=body, headers={"Authorization": f"Bearer {first}"})
        assert old.status_code == 400
        assert old.json()["type"] == "InvalidKeyException"
        for _ in range(3):  # as a client does: re-read the key file on InvalidKeyException, retry
            new = httpx.post(url, content=body, headers={"Authorization": f"Bearer {_inference_key(tmp_path / 'run')}"})
            if new.status_code == 200:
                break
        assert new.status_code == 200, new.text
        assert second != first
        assert "torch_api: inference key renewed" in proc.log.read_text()
