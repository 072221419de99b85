"""A real TorchServe, started once for the torch_api tests on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.artifacts import default_root
from contract.keys import KEY_FILE, read_keys
from services.process import StartError
from services.torch_api.launcher import READY_LINE
from tests.utils.servers import Process, free_port, log_tail, running, torchserve_worker_port


@dataclass
class TorchServe:
    proc: Process
    host: str
    inference: int
    management: int
    metrics: int
    run_dir: Path
    log_dir: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.inference}"

    def keys(self) -> dict[str, str]:
        return read_keys(self.run_dir / KEY_FILE)

    def auth(self, kind: str = "inference") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys()[kind]}"}


@pytest.fixture(scope="session")
def torchserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorchServe]:
    base = tmp_path_factory.mktemp("torchserve")
    ports = {name: free_port() for name in ("inference", "management", "metrics", "grpc_inference", "grpc_management")}
    env = {f"TORCH_API_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env.update(
        TORCH_API_WORKER_PORT=str(torchserve_worker_port()),
        TORCH_API_RUN_DIR=str(base / "run"),
        TORCH_API_LOG_DIR=str(base / "logs"),
        TORCH_API_ARTIFACTS=str(default_root()),
        TORCH_API_READY_TIMEOUT_S="240",
    )
    with running("torchserve", ["-m", "services.torch_api", "serve"], base / "launcher.log", env) as proc:
        server = TorchServe(
            proc, "127.0.0.1", ports["inference"], ports["management"], ports["metrics"], base / "run", base / "logs"
        )
        try:
            proc.wait_ready(line=READY_LINE, timeout_s=300)
        except StartError as exc:
            pytest.fail(f"{exc}\n{_logs(server.log_dir)}")
        yield server


def _logs(log_dir: Path) -> str:
    return "\n".join(f"--- {name} ---\n{log_tail(log_dir / name, 30)}" for name in ("ts_log.log", "model_log.log"))
