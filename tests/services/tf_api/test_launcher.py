"""``python -m services.tf_api serve``: broken versions, no loadable model, bad settings, SIGTERM, body limits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.tf_api.compat.dataplane import DataPlane
from services.tf_api.compat.metrics import Metrics
from services.tf_api.compat.rest import State, create_app
from services.tf_api.compat.servables import ModelRegistry
from services.tf_api.config import MonitoringSettings
from tests.services.tf_api.conftest import ready_probe, start_env
from tests.services.tf_api.test_config import make_model_base
from tests.utils.servers import REPO, running


def _models_config(tmp_path: Path, base: str) -> Path:
    path = tmp_path / "models.config"
    path.write_text(
        f"model_config_list {{ config {{ name: 'm' base_path: '{base}' model_platform: 'tensorflow' "
        "model_version_policy { all {} } } }"
    )
    return path


def test_broken_version_is_reported_and_sigterm_stops_cleanly(tmp_path: Path) -> None:
    make_model_base(tmp_path, garbage=3)
    env, rest, _ = start_env(
        tmp_path,
        TF_API_ARTIFACTS=str(tmp_path),
        TF_API_MODELS_CONFIG=str(_models_config(tmp_path, "/models/m")),
        TF_API_ENABLE_BATCHING="false",
    )
    with running("tf_api-broken", ["-m", "services.tf_api", "serve"], tmp_path / "launcher.log", env) as proc:
        proc.wait_ready(ready_probe(rest, "m"), timeout_s=120)
        status = httpx.get(f"http://127.0.0.1:{rest}/v1/models/m").json()["model_version_status"]
        assert [(s["version"], s["state"], s["status"]["error_code"]) for s in status] == [
            ("3", "END", "UNKNOWN"),
            ("2", "AVAILABLE", "OK"),
            ("1", "AVAILABLE", "OK"),
        ]
        assert status[0]["status"]["error_message"].startswith("Failed to load SavedModel ")
        answer = httpx.post(f"http://127.0.0.1:{rest}/v1/models/m:predict", json={"instances": [[0.1] * 10]})
        assert answer.status_code == 200
        assert len(answer.json()["predictions"]) == 1
        log = proc.log.read_text()
        assert "tf_api: started duoserve-compat" in log
        assert "batching off" in log
        assert "model m version 3: Failed to load SavedModel" in log
        assert proc.stop() == 0


def test_no_loadable_model_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "tf" / "m").mkdir(parents=True)
    env, _, _ = start_env(
        tmp_path, TF_API_ARTIFACTS=str(tmp_path), TF_API_MODELS_CONFIG=str(_models_config(tmp_path, "m"))
    )
    result = subprocess.run(
        [sys.executable, "-m", "services.tf_api", "serve"],
        cwd=REPO,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no model version could be loaded: m[none]" in result.stderr
    assert "tf_api: the compatible server failed to start" in result.stderr


def test_bad_setting_exits_with_the_variable_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.tf_api", "serve"],
        cwd=REPO,
        env={**_base_env(), "TF_API_GRPC_PORT": "not-a-port"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "tf_api: bad setting: TF_API_GRPC_PORT: Input should be a valid integer" in result.stderr


def _base_env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_undeclared_oversized_body_is_cut_off_at_the_limit() -> None:
    """A chunked body (no Content-Length) is read only up to the limit."""

    async def main() -> tuple[int, dict[str, str], str]:
        with ThreadPoolExecutor(1) as pool:
            state = State(ModelRegistry(), DataPlane(None, pool, Metrics()), Metrics(), max_body_bytes=4096)
            app: web.Application = create_app(state, MonitoringSettings())

            async def body():  # an endless stream; the server must stop reading at 4 KiB
                for _ in range(1000):
                    yield b" " * 1024

            async with TestClient(TestServer(app)) as client:
                response = await client.post("/v1/models/mlp:predict", data=body())
                return response.status, await response.json(), response.headers["X-TF-Server"]

    status, body, server = asyncio.run(asyncio.wait_for(main(), 30))
    assert status == 413
    assert body == {"error": "Request body exceeds the limit of 4096 bytes (TF_API_MAX_BODY_BYTES)"}
    assert server == "duoserve-compat"
