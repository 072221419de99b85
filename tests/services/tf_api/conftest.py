"""The compatible TF server, started once for the tf_api tests on free loopback ports, and the reference models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from contract.artifacts import default_root
from tests.utils.servers import Process, free_port, running

MODELS = ("mlp", "digits", "resnet")


@dataclass
class TFServer:
    proc: Process
    rest_port: int
    grpc_port: int
    log_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


def start_env(base: Path, **extra: str) -> tuple[dict[str, str], int, int]:
    """Environment for `python -m services.tf_api serve` on free ports, logging under ``base``."""
    rest, grpc_port = free_port(), free_port()
    env = {
        "TF_API_REST_PORT": str(rest),
        "TF_API_GRPC_PORT": str(grpc_port),
        "TF_API_ARTIFACTS": str(default_root()),
        "TF_API_LOG_DIR": str(base / "logs"),
        "TF_API_SERVER": "compat",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **extra,
    }
    return env, rest, grpc_port


def ready_probe(rest_port: int, model: str = "mlp") -> Callable[[], bool]:
    def probe() -> bool:
        response = httpx.get(f"http://127.0.0.1:{rest_port}/v1/models/{model}", timeout=2)
        return response.status_code == 200 and "AVAILABLE" in response.text

    return probe


@pytest.fixture(scope="session")
def tf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TFServer]:
    base = tmp_path_factory.mktemp("tf_api")
    env, rest, grpc_port = start_env(base)
    with running("tf_api", ["-m", "services.tf_api", "serve"], base / "launcher.log", env) as proc:
        proc.wait_ready(ready_probe(rest, "resnet"), timeout_s=180)
        yield TFServer(proc, rest, grpc_port, base / "logs")


@pytest.fixture(scope="session")
def http(tf_server: TFServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tf_server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def reference() -> Callable[[str, np.ndarray], np.ndarray]:
    """``reference(model, x)``: the SavedModel's own answer, in this process."""
    import tensorflow as tf

    loaded: dict[str, object] = {}

    def run(model: str, x: np.ndarray) -> np.ndarray:
        if model not in loaded:
            loaded[model] = tf.saved_model.load(str(default_root() / "tf" / model / "1"))
        signature = loaded[model].signatures["serving_default"]  # type: ignore[attr-defined]
        return np.asarray(signature(x=tf.constant(x))["probabilities"].numpy())

    return run
