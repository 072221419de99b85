"""Settings: defaults, JSON policies from the environment, and errors that name the variable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import Settings, SettingsError, create_app, load_settings
from gateway.config import PolicyConfig


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert str(settings.torch_url) == "http://127.0.0.1:8080/"
    assert str(settings.tf_url) == "http://127.0.0.1:8501/"
    assert settings.tf_protocol == "rest"
    assert settings.http_client == "h1"
    assert settings.serving("digits") == ["torch", "torch_ort", "tf"]
    assert settings.policy_for("digits") == PolicyConfig(policy="fixed", backend="torch")
    assert settings.api_key is None
    assert settings.triton_url is None


def test_triton_serves_once_its_url_is_given_and_only_then(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TRITON_URL", "http://127.0.0.1:8100")
    assert load_settings().serving("digits") == ["torch", "torch_ort", "triton", "triton_ort", "tf"]
    monkeypatch.delenv("GATEWAY_TRITON_URL")
    monkeypatch.setenv("GATEWAY_BACKENDS", json.dumps({"digits": ["torch", "triton"]}))
    with pytest.raises(
        SettingsError, match=r"GATEWAY_BACKENDS: model 'digits' names \['triton'\], but GATEWAY_TRITON_URL"
    ):
        load_settings()


def test_policies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    policies = {
        "digits": {
            "policy": "weighted",
            "weights": {"torch": 1, "tf": 1},
            "shadow": {"backend": "torch_ort", "share": 0.5},
        },
        "mlp": {"policy": "failover", "order": ["tf", "torch"]},
    }
    monkeypatch.setenv("GATEWAY_POLICIES", json.dumps(policies))
    monkeypatch.setenv("GATEWAY_BACKENDS", json.dumps({"digits": ["torch", "torch_ort", "tf"], "mlp": ["torch", "tf"]}))
    monkeypatch.setenv("GATEWAY_API_KEY", "s3cret")
    monkeypatch.setenv("GATEWAY_READ_TIMEOUT_S", "2.5")
    settings = load_settings()
    assert settings.policy_for("digits").weights == {"torch": 1, "tf": 1}
    assert settings.policy_for("mlp").order == ["tf", "torch"]
    assert settings.serving("mlp") == ["torch", "tf"]
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.read_timeout_s == 2.5


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("GATEWAY_PORT", "http", ["GATEWAY_PORT"]),
        ("GATEWAY_PORT", "70000", ["GATEWAY_PORT", "65535"]),
        ("GATEWAY_TORCH_URL", "not a url", ["GATEWAY_TORCH_URL"]),
        ("GATEWAY_TF_PROTOCOL", "soap", ["GATEWAY_TF_PROTOCOL", "'rest' or 'grpc'"]),
        ("GATEWAY_READ_TIMEOUT_S", "-1", ["GATEWAY_READ_TIMEOUT_S", "greater than 0"]),
        ("GATEWAY_POLICIES", "{not json", ["GATEWAY_POLICIES"]),
        ("GATEWAY_POLICIES", '{"mlp": {"policy": "random"}}', ["GATEWAY_POLICIES[mlp][policy]"]),
        ("GATEWAY_POLICIES", '{"mlp": {"policy": "fixed"}}', ["GATEWAY_POLICIES[mlp]", 'needs "backend"']),
        (
            "GATEWAY_POLICIES",
            '{"mlp": {"policy": "weighted", "weights": {"keras": 1}}}',
            ["GATEWAY_POLICIES[mlp][weights][keras]"],
        ),
        ("GATEWAY_POLICIES", '{"mlp": {"policy": "weighted", "weights": {"tf": 0}}}', ["positive total"]),
        ("GATEWAY_BACKENDS", '{"mlp": []}', ["GATEWAY_BACKENDS", "no backend"]),
        ("GATEWAY_API_KEY", "", ["GATEWAY_API_KEY", "empty"]),
        ("GATEWAY_HTTP_CLIENT", "requests", ["GATEWAY_HTTP_CLIENT"]),
        ("GATEWAY_GRPC_PORT", "grpc", ["GATEWAY_GRPC_PORT"]),
        ("GATEWAY_GRPC_PORT", "-1", ["GATEWAY_GRPC_PORT", "greater than or equal to 0"]),
        ("GATEWAY_GRPC_PORT", "8000", ["GATEWAY_GRPC_PORT: 8000 is also GATEWAY_PORT"]),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: list[str]) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    for word in words:
        assert word in str(info.value)


def test_policy_must_use_a_serving_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_BACKENDS", '{"mlp": ["torch"]}')
    monkeypatch.setenv("GATEWAY_POLICIES", '{"mlp": {"policy": "fixed", "backend": "tf"}}')
    with pytest.raises(SettingsError, match=r"GATEWAY_POLICIES: model 'mlp' names \['tf'\]"):
        load_settings()


def test_unknown_model_and_bad_manifest_fail_create_app(manifest_path: Path, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"GATEWAY_POLICIES: unknown model\(s\) \['resnet50'\]"):
        create_app(Settings(manifest=manifest_path, policies={"resnet50": PolicyConfig(policy="fixed", backend="tf")}))
    with pytest.raises(SettingsError, match=r"GATEWAY_MANIFEST: .*missing"):
        create_app(Settings(manifest=tmp_path / "nowhere" / "manifest.json"))


def test_launcher_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = {"GATEWAY_MAX_CONCURRENCY": "lots", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd())}
    proc = subprocess.run([sys.executable, "-m", "gateway"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "GATEWAY_MAX_CONCURRENCY" in proc.stderr


def test_launcher_serves_and_exits_cleanly_on_sigterm(manifest_path: Path, tmp_path: Path) -> None:
    import signal
    import time

    import grpc

    from services.process import http_probe
    from tests.utils.servers import free_port, running

    port, grpc_port = free_port(), free_port()
    env = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_GRPC_PORT": str(grpc_port),
        "GATEWAY_MANIFEST": str(manifest_path),
        "GATEWAY_TORCH_URL": "http://127.0.0.1:9",
        "GATEWAY_LOG_LEVEL": "info",  # uvicorn's shutdown line is INFO; the default is warning
    }
    with running("gateway", ["-m", "gateway"], tmp_path / "gateway.log", env) as server:
        server.wait_ready(http_probe(f"http://127.0.0.1:{port}/health/live"), timeout_s=30)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:  # the gRPC server runs beside HTTP
            grpc.channel_ready_future(channel).result(timeout=10)
        server.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        while server.returncode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.returncode == 0, server.tail()
        assert "Application shutdown complete" in server.tail()


def test_production_logging_by_default_and_an_access_log_on_request(manifest_path: Path) -> None:
    import logging

    from gateway.server import uvicorn_config

    default = Settings(manifest=manifest_path)
    assert (default.log_level, default.access_log) == ("warning", False)
    assert uvicorn_config(object(), default).access_log is False
    config = uvicorn_config(object(), Settings(manifest=manifest_path, access_log=True))
    assert config.access_log is True
    # uvicorn's access lines are INFO: the logger must let them through at the default level
    assert logging.getLogger("uvicorn.access").getEffectiveLevel() == logging.INFO
