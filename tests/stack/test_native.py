"""``make up`` / ``make down``: the stack description and its processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from contract.manifest import Manifest, ModelEntry, TensorSpec
from services.process import free_port
from stack.native import COMMANDS, _archives, _gateway_backends
from tests.utils.servers import REPO
from tests.utils.stack import Stack

pytestmark = pytest.mark.slow


def test_stack_json_describes_the_running_stack(stack: Stack) -> None:
    info = stack.info
    assert info.tf_server == "duoserve-compat"
    assert sorted(info.models) >= ["digits", "mlp", "resnet"]
    assert info.gateway.startswith("http://127.0.0.1:")
    assert set(info.pids) == {"torch_api", "tf_api", "gateway"}
    key = stack.key()
    ping = httpx.get(f"{info.torch}/ping", headers={"Authorization": f"Bearer {key}"})
    assert ping.json() == {"status": "Healthy"}
    assert httpx.get(f"{info.gateway}/health/ready").status_code == 200
    status = stack.command("status")
    assert status.returncode == 0
    assert json.loads(status.stdout)["gateway"] == info.gateway


def test_second_up_refuses_while_running(stack: Stack) -> None:
    again = stack.command("up", timeout=60)
    assert again.returncode == 1
    assert "already running" in again.stderr


def _entry(name: str, **update: object) -> ModelEntry:
    spec = TensorSpec(name="x", shape=(2,))
    return ModelEntry(name=name, inputs=(spec,), outputs=(spec,), max_batch=4).model_copy(update=update)


def test_gateway_backends_follow_what_torchserve_and_triton_load() -> None:
    models = Manifest(models={"digits": _entry("digits"), "mlp": _entry("mlp")})
    assert _gateway_backends("all", "none", models) == {
        "digits": ["torch", "torch_ort", "tf"],
        "mlp": ["torch", "torch_ort", "tf"],
    }
    assert _gateway_backends("digits,mlp_ort", "none", models) == {
        "digits": ["torch", "tf"],
        "mlp": ["torch_ort", "tf"],
    }
    assert _gateway_backends("all", "all", models)["mlp"] == ["torch", "torch_ort", "triton", "triton_ort", "tf"]
    # Triton's model names are TorchServe's archive names
    assert _gateway_backends("digits", "digits_ort,mlp", models) == {
        "digits": ["torch", "triton_ort", "tf"],
        "mlp": ["triton", "tf"],
    }


def test_a_model_without_an_onnx_artifact_has_no_torch_ort_backend() -> None:
    models = Manifest(models={"k": _entry("k", missing={"onnx": "tf2onnx has no Erfc"}), "mlp": _entry("mlp")})
    assert _gateway_backends("all", "all", models) == {
        "k": ["torch", "triton", "tf"],
        "mlp": ["torch", "torch_ort", "triton", "triton_ort", "tf"],
    }
    assert _archives("all", models) == ["k", "mlp", "mlp_ort"]


def test_native_commands_are_the_launchers() -> None:
    assert COMMANDS["gateway"] == ["python", "-m", "gateway"]
    assert COMMANDS["torch_api"] == ["python", "-m", "services.torch_api", "serve"]
    assert COMMANDS["tf_api"] == ["python", "-m", "services.tf_api", "serve"]
    assert COMMANDS["triton_api"] == ["python", "-m", "services.triton_api", "serve"]


@pytest.mark.parametrize("variable", ["GATEWAY_PORT", "GATEWAY_GRPC_PORT", "TRITON_API_METRICS_PORT"])
def test_a_taken_port_is_named_before_anything_starts(tmp_path: Path, variable: str) -> None:
    """Port 8000 (or any) already in use: ``up`` names the port and its variable, and starts nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        others = ["INFERENCE", "MANAGEMENT", "METRICS", "GRPC_INFERENCE", "GRPC_MANAGEMENT"]
        env = {
            **os.environ,
            **{f"TORCH_API_{name}_PORT": str(free_port()) for name in others},
            "TF_API_REST_PORT": str(free_port()),
            "TF_API_GRPC_PORT": str(free_port()),
            **{f"TRITON_API_{name}_PORT": str(free_port()) for name in ("HTTP", "GRPC", "METRICS")},
            "GATEWAY_PORT": str(free_port()),
            "GATEWAY_GRPC_PORT": str(free_port()),
            variable: str(port),
            "PYTHONPATH": str(REPO),
            "STACK_RUN_DIR": str(tmp_path / "run"),
            "STACK_LOG_DIR": str(tmp_path / "logs"),
        }
        result = subprocess.run(
            [sys.executable, "-m", "stack", "up"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 2, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use; set {variable} to another port" in result.stderr
    assert not (tmp_path / "run" / "stack.pids.json").exists()
    assert not (tmp_path / "logs").exists()
