"""``make up`` / ``make down``: the stack description and its processes."""

from __future__ import annotations

import json

import httpx
import pytest

from services.stack import COMMANDS, _gateway_backends
from tests.utils.stack import Stack

pytestmark = pytest.mark.slow


def test_stack_json_describes_the_running_stack(stack: Stack) -> None:
    info = stack.info
    assert info["tf_server"] == "duoserve-compat"
    assert sorted(info["models"]) == ["digits", "mlp", "resnet"]
    assert info["gateway"].startswith("http://127.0.0.1:")
    key = stack.key()
    ping = httpx.get(f"{info['torch']}/ping", headers={"Authorization": f"Bearer {key}"})
    assert ping.json() == {"status": "Healthy"}
    assert httpx.get(f"{info['gateway']}/health/ready").status_code == 200
    status = stack.command("status")
    assert status.returncode == 0
    assert json.loads(status.stdout)["gateway"] == info["gateway"]


def test_second_up_refuses_while_running(stack: Stack) -> None:
    again = stack.command("up", timeout=60)
    assert again.returncode == 1
    assert "already running" in again.stderr


def test_gateway_backends_follow_what_torchserve_loads() -> None:
    models = ["digits", "mlp"]
    assert _gateway_backends("all", models) == {
        "digits": ["torch", "torch_ort", "tf"],
        "mlp": ["torch", "torch_ort", "tf"],
    }
    assert _gateway_backends("digits,mlp_ort", models) == {"digits": ["torch", "tf"], "mlp": ["torch_ort", "tf"]}


def test_native_commands_are_the_launchers() -> None:
    assert COMMANDS["gateway"] == ["python", "-m", "gateway"]
    assert COMMANDS["torch_api"] == ["python", "-m", "services.torch_api", "serve"]
    assert COMMANDS["tf_api"] == ["python", "-m", "services.tf_api", "serve"]
